"""Nearest-neighbour search against a plain matrix product, and the auto backend choice."""

from __future__ import annotations

import numpy as np
import torch
from common import record, timed

from tailedcore.compute import resolve_device


def bench_knn(args, patches: np.ndarray):
    from tailedcore.knn import knn_search

    rng = np.random.default_rng(1)
    order = rng.permutation(len(patches))  # disjoint query and memory rows: no exact self-matches
    queries = np.ascontiguousarray(patches[order[: 16384 * args.scale]], dtype=np.float32)
    memory = np.ascontiguousarray(patches[order[-16384 * args.scale :]], dtype=np.float32)
    dim = queries.shape[1]
    flop = 2.0 * len(queries) * len(memory) * dim
    device = resolve_device(args.device)
    a = torch.from_numpy(queries).to(device)
    b = torch.from_numpy(memory).to(device)
    mm_seconds, _ = timed(lambda: a @ b.T, repeat=3)
    knn_search(queries[:64], memory, 1, "auto", 16384, args.device)  # calibrates this size class once (cached)
    search_seconds, (dist, idx) = timed(knn_search, queries, memory, 1, "auto", 16384, args.device, repeat=2)
    torch_seconds, _ = timed(knn_search, queries, memory, 1, "torch", 16384, args.device, repeat=2)
    record(
        "knn",
        "matmul GFLOP/s (same shapes)",
        flop / mm_seconds / 1e9,
        detail=f"Q={len(queries)} M={len(memory)} d={dim}",
    )
    record("knn", "search GFLOP/s (auto backend)", flop / search_seconds / 1e9)
    record("knn", "torch backend GFLOP/s", flop / torch_seconds / 1e9)
    record("knn", "search / matmul FLOP/s", mm_seconds / search_seconds, ">= 0.5", mm_seconds / search_seconds >= 0.5)
    faiss_seconds, (dist_f, idx_f) = timed(knn_search, queries, memory, 1, "faiss", 16384, args.device, repeat=2)
    dist_t, idx_t = knn_search(queries, memory, 1, "torch", 16384, args.device)
    record("knn", "faiss backend GFLOP/s", flop / faiss_seconds / 1e9)
    from tailedcore.knn import choose_backend

    chosen = choose_backend(memory, 1, device)
    fastest = min(torch_seconds, faiss_seconds)
    record(
        "knn",
        "auto backend / fastest backend",
        fastest / search_seconds,
        ">= 0.95",
        fastest / search_seconds >= 0.95,
        detail=f"auto chose {chosen}; torch {torch_seconds:.2f} s, faiss {faiss_seconds:.2f} s",
    )
    gap = float(np.max(np.abs(dist_f - dist_t) / np.maximum(dist_f, 1e-6)))
    same_idx = float(np.mean(idx_f == idx_t))
    record(
        "knn",
        "faiss vs torch: max relative distance gap",
        gap,
        "<= 1e-4",
        gap <= 1e-4,
        detail=f"same neighbour for {100 * same_idx:.3f}% of queries (others: equal-distance ties)",
    )
