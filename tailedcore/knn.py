"""Nearest-neighbour search with one interface and two backends (faiss, torch); squared L2 distances.

``auto`` picks torch (one GEMM per block of queries plus a row minimum): on CPU it runs at about the
machine's matrix-multiply rate, 3-4x faster than faiss-cpu's flat index at k=1 (bench/run.py, knn). On CUDA
``auto`` uses faiss-gpu when faiss sees a GPU, else torch on the GPU. Query blocks are sized so the
distance block stays under ``block_bytes``.
"""

from __future__ import annotations

import numpy as np
import torch

from .compute import current_device, resolve_device

BACKENDS = ("auto", "faiss", "torch")


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
    if backend == "faiss" or (backend == "auto" and target.type == "cuda" and _faiss_gpus() > 0):
        import faiss

        index = faiss.IndexFlatL2(memory.shape[1])
        if target.type == "cuda" and _faiss_gpus() > 0:
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        index.add(memory)
        distances, indices = index.search(queries, k)
        return np.maximum(distances, 0.0), indices.astype(np.int64)
    return _torch_search(queries, memory, k, chunk, target)


@torch.no_grad()
def _torch_search(queries: np.ndarray, memory: np.ndarray, k: int, chunk: int, device: torch.device | None = None):
    device = device if device is not None else torch.device("cpu")
    bank = torch.from_numpy(memory).to(device)
    bank_sq = (bank * bank).sum(1)
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[start : start + chunk]).to(device)
        d = torch.addmm(bank_sq[None, :], q, bank.T, alpha=-2.0)  # |b|^2 - 2 q.b, then + |q|^2
        if k == 1:
            values, nearest = d.min(dim=1, keepdim=True)
        else:
            values, nearest = torch.topk(d, k, dim=1, largest=False, sorted=True)
        distances.append((values + (q * q).sum(1, keepdim=True)).clamp_min_(0.0).cpu())
        indices.append(nearest.cpu())
    return torch.cat(distances).numpy(), torch.cat(indices).numpy().astype(np.int64)
