"""Straightforward reference implementations, kept to check the fast ones (unit tests) and to measure them
(``bench/run.py``). Each follows docs/protocol.md the obvious way, like the original code; none is used by the
workflow.
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange

from tailedcore.samplers.kcenter import _sqdist  # the same distance arithmetic as the package's kernel


@torch.no_grad()
def greedy_original(points: np.ndarray, num_select: int, start: int) -> np.ndarray:
    """Greedy k-center as the original PatchCore code does it (docs/protocol.md §2.2): every iteration recomputes the
    distance of every point to the newest centre as ``|a|^2 + |b|^2 - 2 a.b`` (float32, torch), takes the
    minimum with the running distances and picks the argmax."""
    data = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    nearest = torch.full((len(data), 1), float("inf"))
    selected, chosen = [], int(start)
    for _ in range(num_select):
        selected.append(chosen)
        centre = data[chosen : chosen + 1]
        distance = (
            (data.pow(2).sum(1, keepdim=True) + centre.pow(2).sum(1) - 2 * data.mm(centre.T)).clamp(0, None).sqrt()
        )
        nearest = torch.min(torch.cat([nearest, distance], dim=1), dim=1).values.reshape(-1, 1)
        chosen = int(torch.argmax(nearest))
    return np.asarray(selected)


def lof_sklearn(by_position: np.ndarray, k: int) -> np.ndarray:
    """(positions, N, d) -> LOF of every point, one scikit-learn ``LocalOutlierFactor`` per position, as
    the original code (docs/protocol.md §2.3)."""
    from sklearn.neighbors import LocalOutlierFactor

    out = np.empty(by_position.shape[:2], dtype=np.float64)
    for position, points in enumerate(by_position):
        model = LocalOutlierFactor(n_neighbors=k, metric="l2").fit(points)
        out[position] = -model.negative_outlier_factor_
    return out


def tail_neighbourhoods_per_row(embeddings: np.ndarray, trim_percentile: float = 0.85) -> tuple[np.ndarray, np.ndarray]:
    """The TailSampler's adaptive neighbourhoods and reverse-vote class sizes (docs/protocol.md §2.4) as the official
    code computes them: a threshold per row in a loop (numpy), then ``scipy.stats.mode`` over the
    NaN-masked matrix of neighbourhood sizes (ties -> smallest). Returns (membership matrix, kappa)."""
    from scipy import stats

    emb = np.asarray(embeddings, dtype=np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), np.float32(1e-12))
    sim = torch.from_numpy(emb) @ torch.from_numpy(emb).T  # the same float32 product as the package
    sim = sim.numpy()
    num = len(sim)
    member = np.zeros((num, num), dtype=bool)
    for i in range(num):
        q = np.trunc(sim[i] * np.float32(num)) / np.float32(num)
        half = np.cos(np.arccos(np.clip(q.min(), -1, 1)) / np.float32(2))
        inside = int((q > half).sum())
        k = int(np.floor(trim_percentile * inside))
        threshold = np.sort(q)[::-1][max(k - 1, 0)]
        member[i] = sim[i] >= threshold
    sizes = member.sum(axis=1).astype(np.float64)
    votes = np.where(member, sizes[:, None], np.nan)  # column j: the sizes of the i whose neighbourhood holds j
    kappa = stats.mode(votes, axis=0, nan_policy="omit").mode.astype(np.float64)
    return member, kappa


@njit(parallel=True, fastmath=True, cache=True)
def _greedy_pointwise(points, num_select, start, num_chunks):  # pragma: no cover - compiled by numba
    num, dim = points.shape
    nearest = np.full(num, np.inf, dtype=np.float32)
    owner = np.zeros(num, dtype=np.int32)  # index (in selection order) of each point's nearest centre
    centres = np.empty((num_select, dim), dtype=np.float32)
    centre_quarter = np.empty(num_select, dtype=np.float32)  # |c - c_j|^2 / 4, shrunk by the safety margin
    selected = np.empty(num_select, dtype=np.int64)
    best_value = np.empty(num_chunks, dtype=np.float32)
    best_index = np.empty(num_chunks, dtype=np.int64)
    computed = np.zeros(num_chunks, dtype=np.int64)
    step = (num + num_chunks - 1) // num_chunks
    shrink = np.float32(0.25 / (1.0 + 1e-3))
    chosen = start
    for k in range(num_select):
        selected[k] = chosen
        centre = points[chosen].copy()
        centres[k] = centre
        for j in prange(k):
            centre_quarter[j] = _sqdist(centres[j], centre) * shrink
        for chunk in prange(num_chunks):
            lo = chunk * step
            hi = min(num, lo + step)
            top = np.float32(-1.0)
            top_index = lo
            count = 0
            for i in range(lo, hi):
                current = nearest[i]
                # skip when |c - a(i)|^2 / 4 >= |i - a(i)|^2: then |i - c| >= |i - a(i)|
                if k == 0 or centre_quarter[owner[i]] < current:
                    count += 1
                    distance = _sqdist(points[i], centre)
                    if distance < current:
                        current = distance
                        nearest[i] = distance
                        owner[i] = k
                if current > top:  # strict: first index on ties within the chunk
                    top = current
                    top_index = i
            best_value[chunk] = top
            best_index[chunk] = top_index
            computed[chunk] += count
        top = np.float32(-1.0)
        for chunk in range(num_chunks):  # chunks are in index order: first index on ties overall
            if best_value[chunk] > top:
                top = best_value[chunk]
                chosen = best_index[chunk]
    return selected, computed.sum()


def greedy_pointwise(points: np.ndarray, num_select: int, start: int) -> tuple[np.ndarray, int]:
    """The previous CPU kernel (until the clustered one): every point remembers its nearest centre and is
    skipped by the triangle inequality, but every iteration still visits every point and computes the new
    centre's distance to every earlier centre (O(P * M)). Returns (indices, distances computed)."""
    data = np.ascontiguousarray(points, dtype=np.float32)
    return _greedy_pointwise(data, int(num_select), int(start), max(1, 4 * numba.get_num_threads()))
