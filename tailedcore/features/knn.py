"""Nearest-neighbour search with one interface and three exact backends; squared L2 distances.

* ``torch``: the flat search as one matrix product per query block (|b|^2 - 2 q.b, then + |q|^2);
* ``faiss``: faiss's flat index (faiss-gpu on CUDA when installed);
* ``bound`` (:mod:`tailedcore.features.knn_bound`): skips most of the bank with a lower bound from its leading principal
  components and computes exact distances only where the bound cannot exclude a row.

``auto`` picks the fastest by measurement on the machine it runs on: the first search of a size class
(memory-bank size to the nearest power of two, dimension, k, device, threads) times every backend on a sample
of the real memory bank and queries (interleaved, best of three; a few seconds) and caches the winner per
machine (host, CPU model, CPU count) in ``~/.cache/tailedcore/knn_backends.json`` (``TAILEDCORE_CACHE``
moves it). Which one wins depends on the machine and the data (bench/run.py, knn). All are exact: the
neighbours are the same up to ties within the flat searches' float32 rounding. On CUDA ``auto`` uses faiss-gpu
when faiss sees a GPU, else torch on the GPU; ``bound`` is available there for k = 1. Query blocks are sized
so the distance block stays under ``block_bytes``.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from ..runtime.compute import current_device, resolve_device
from ..runtime.logs import ProgressLog

CALIBRATION_QUERIES = 2048
CALIBRATION_MEMORY = 32768

BACKENDS = ("auto", "faiss", "torch", "bound")
EXACT_BACKENDS = ("torch", "faiss", "bound")  # what auto measures (bound: tailedcore.features.knn_bound)


def _faiss_gpus() -> int:
    try:
        import faiss
    except ImportError:
        return 0
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def knn_search(
    queries: np.ndarray,
    memory: np.ndarray,
    k: int = 1,
    backend: str = "auto",
    chunk: int = 16384,
    device: str | None = None,
    block_bytes: int = 256 * 2**20,
) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: the k smallest squared L2 distances to ``memory`` rows and their indices.

    Returns (distances (Q, k) float32, indices (Q, k) int64), nearest first. On CUDA (``device``, None = the
    process's): faiss-gpu when faiss has GPUs, else torch on the GPU.
    """
    target = resolve_device(device or current_device())
    if backend not in BACKENDS:
        raise ValueError(f"unknown knn backend {backend!r}; choose from {BACKENDS}")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    memory = np.ascontiguousarray(memory, dtype=np.float32)
    if k > len(memory):
        raise ValueError(f"k={k} exceeds the memory bank size {len(memory)}")
    chunk = max(16, min(chunk, block_bytes // (4 * len(memory))))
    if backend == "auto":
        backend = choose_backend(memory, k, target, chunk, queries)
    if backend == "bound" and (target.type == "cpu" or k == 1):
        from .knn_bound import BoundIndex

        progress = ProgressLog(f"kNN search (bound) over {len(memory)} memory rows: queries", len(queries))
        distances, indices, _ = BoundIndex(memory, device=target).search(queries, k, chunk, progress)
        return distances, indices
    if backend == "bound":
        logging.getLogger(__name__).info("kNN bound search on the GPU takes k = 1; flat torch search for k = %d", k)
        backend = "torch"
    if backend == "faiss":
        import faiss

        if target.type == "cpu":
            faiss.omp_set_num_threads(torch.get_num_threads())  # the job's threads, like torch
        index = faiss.IndexFlatL2(memory.shape[1])
        if target.type == "cuda" and _faiss_gpus() > 0:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        index.add(memory)
        distances = np.empty((len(queries), k), np.float32)
        indices = np.empty((len(queries), k), np.int64)
        progress = ProgressLog(f"kNN search over {len(memory)} memory rows: queries", len(queries))
        for start, stop in _faiss_blocks(len(queries)):
            progress.update(start)
            distances[start:stop], indices[start:stop] = index.search(queries[start:stop], k)
        return np.maximum(distances, 0.0), indices
    return _torch_search(queries, memory, k, chunk, target)


def _faiss_blocks(num: int, block: int = 16 * 4096) -> list[tuple[int, int]]:
    """Query blocks for the progress log that leave faiss's numbers as one call makes them: multiples of its
    internal 4096-query block, and no block under its 20-query BLAS threshold (a short tail joins the last)."""
    bounds = list(range(0, num, block)) + [num]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < 20:
        del bounds[-2]
    return list(zip(bounds[:-1], bounds[1:]))


@torch.no_grad()
def _torch_search(queries: np.ndarray, memory: np.ndarray, k: int, chunk: int, device: torch.device | None = None):
    device = device if device is not None else torch.device("cpu")
    bank = torch.from_numpy(memory).to(device)
    bank_sq = (bank * bank).sum(1)
    distances, indices = [], []
    progress = ProgressLog(f"kNN search over {len(memory)} memory rows: queries", len(queries))
    for start in range(0, len(queries), chunk):
        progress.update(start)
        q = torch.from_numpy(queries[start : start + chunk]).to(device)
        d = torch.addmm(bank_sq[None, :], q, bank.T, alpha=-2.0)  # |b|^2 - 2 q.b, then + |q|^2
        if k == 1:
            values, nearest = d.min(dim=1, keepdim=True)
        else:
            values, nearest = torch.topk(d, k, dim=1, largest=False, sorted=True)
        distances.append((values + (q * q).sum(1, keepdim=True)).clamp_min_(0.0).cpu())
        indices.append(nearest.cpu())
    return torch.cat(distances).numpy(), torch.cat(indices).numpy().astype(np.int64)


def _cache_file():
    from ..runtime.io import cache_folder

    return cache_folder() / "knn_backends.json"


def _machine() -> str:
    from ..runtime.compute import machine_name

    return machine_name()


def size_class(num_memory: int, dim: int, k: int, device, threads: int) -> str:
    bucket = 1 << max(0, int(round(np.log2(max(1, num_memory)))))
    return f"v4|{device.type}|m{bucket}|d{dim}|k{k}|t{threads}"  # v4: the bound backend's bfloat16 product


def choose_backend(memory: np.ndarray, k: int, device, chunk: int = 16384, queries: np.ndarray | None = None) -> str:
    """The fastest exact backend for this machine and size class, measured once and cached: on a sample of the
    bank and CALIBRATION_QUERIES of ``queries`` (the real ones: how much of the bank the bound search skips
    depends on them), a shorter set drawn with replacement: the choice serves every search of the class, and
    on 64 queries the fixed cost per call of faiss (its index) and of bound (its first sample) made torch look
    fastest on a machine where both are twice as fast on real searches."""
    import json
    import time

    if device.type == "cuda":
        if _faiss_gpus() > 0:
            return "faiss"
        logging.getLogger(__name__).info(
            "kNN on the GPU with torch: this faiss has no GPU build (faiss-gpu: bash envs/install-faiss-gpu.sh)"
        )
        return "torch"
    try:
        import faiss  # noqa: F401

        candidates = list(EXACT_BACKENDS)
    except ImportError:
        candidates = [name for name in EXACT_BACKENDS if name != "faiss"]
    key = size_class(len(memory), memory.shape[1], k, device, torch.get_num_threads())
    path = _cache_file()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    known = cache.get(_machine(), {}).get(key)
    if known in candidates:
        return known
    rng = np.random.default_rng(0)
    sample = memory[np.sort(rng.choice(len(memory), size=min(len(memory), CALIBRATION_MEMORY), replace=False))]
    if queries is None or len(queries) == 0:
        queries = sample[rng.choice(len(sample), size=min(len(sample), CALIBRATION_QUERIES), replace=False)]
        queries = queries + rng.normal(0, 1e-3, queries.shape).astype(np.float32)
    else:  # a short query set drawn again up to the full count: the choice is kept for every search of the class
        few = len(queries) < CALIBRATION_QUERIES
        queries = queries[rng.choice(len(queries), size=CALIBRATION_QUERIES, replace=few)]
    timings = {}
    from .knn_bound import BoundIndex

    index = BoundIndex(sample)  # fitted once per search, outside the timing: a search has ~10^6 queries
    index.search(queries[:16], k, chunk)  # the numba kernel compiled or loaded before it is timed
    for name in candidates * 3:  # interleaved, best of three (a run beside another job can be unlucky once)
        started = time.perf_counter()
        if name == "bound":
            index.search(queries, k, chunk)
        else:
            knn_search(queries, sample, k, name, chunk=chunk, device=device.type)
        timings[name] = min(timings.get(name, float("inf")), time.perf_counter() - started)
    best = min(timings, key=timings.get)
    cache.setdefault(_machine(), {})[key] = best
    try:
        from ..runtime.io import atomic_text

        atomic_text(path, json.dumps(cache, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home: measure again next time
    return best
