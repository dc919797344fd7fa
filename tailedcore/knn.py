"""Nearest-neighbour search with one interface and two backends (faiss, torch); squared L2 distances."""

from __future__ import annotations

import numpy as np
import torch

BACKENDS = ("auto", "faiss", "torch")


def _faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def knn_search(queries: np.ndarray, memory: np.ndarray, k: int = 1, backend: str = "auto",
               chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
    """For each query row: the k smallest squared L2 distances to ``memory`` rows and their indices.

    Returns (distances (Q, k) float32, indices (Q, k) int64), nearest first.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown knn backend {backend!r}; choose from {BACKENDS}")
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    memory = np.ascontiguousarray(memory, dtype=np.float32)
    if k > len(memory):
        raise ValueError(f"k={k} exceeds the memory bank size {len(memory)}")
    if backend == "faiss" or (backend == "auto" and _faiss_available()):
        import faiss

        index = faiss.IndexFlatL2(memory.shape[1])
        index.add(memory)
        distances, indices = index.search(queries, k)
        return np.maximum(distances, 0.0), indices.astype(np.int64)
    return _torch_search(queries, memory, k, chunk)


@torch.no_grad()
def _torch_search(queries: np.ndarray, memory: np.ndarray, k: int, chunk: int):
    bank = torch.from_numpy(memory)
    bank_sq = (bank * bank).sum(1)
    distances, indices = [], []
    for start in range(0, len(queries), chunk):
        q = torch.from_numpy(queries[start:start + chunk])
        d = (q * q).sum(1, keepdim=True) - 2.0 * q @ bank.T + bank_sq[None, :]
        top = torch.topk(d, k, dim=1, largest=False, sorted=True)
        distances.append(top.values.clamp_min_(0.0))
        indices.append(top.indices)
    return torch.cat(distances).numpy(), torch.cat(indices).numpy().astype(np.int64)
