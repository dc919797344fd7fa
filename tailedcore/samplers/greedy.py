"""Exact greedy k-center coreset (spec §2.2).

Every iteration updates each point's distance to its nearest chosen centre with one fused
matrix-vector pass (``|x|^2 - 2 x.c + |c|^2``, torch, all threads) and picks the farthest point next
(first index on ties). Squared distances order points exactly like the Euclidean distances of the
original code, so the selection is the same.
"""

from __future__ import annotations

import numpy as np
import torch


def random_projection(features: np.ndarray, dim: int, generator: torch.Generator) -> np.ndarray:
    """Project (P, D) -> (P, dim) with a bias-free linear map drawn like ``nn.Linear``'s default init
    (uniform in +-1/sqrt(D)) from ``generator``; identity when dim >= D."""
    features = np.asarray(features, dtype=np.float32)
    in_dim = features.shape[1]
    if dim >= in_dim:
        return np.ascontiguousarray(features)
    bound = 1.0 / np.sqrt(in_dim)
    weight = (torch.rand((dim, in_dim), generator=generator, dtype=torch.float64) * 2 - 1) * bound
    weight = weight.to(torch.float32).numpy()
    out = np.empty((len(features), dim), dtype=np.float32)
    for start in range(0, len(features), 65536):  # bounded temporary memory
        out[start:start + 65536] = features[start:start + 65536] @ weight.T
    return out


@torch.no_grad()
def greedy_kcenter(points: np.ndarray, num_select: int, start: int) -> np.ndarray:
    """Indices (in selection order) of the greedy k-center selection starting at ``start``."""
    data = torch.from_numpy(np.ascontiguousarray(points, dtype=np.float32))
    num_points = len(data)
    if not 1 <= num_select <= num_points:
        raise ValueError(f"cannot select {num_select} of {num_points} points")
    norms = (data * data).sum(dim=1)
    nearest = torch.full((num_points,), float("inf"))
    distances = torch.empty(num_points)
    selected = torch.empty(num_select, dtype=torch.int64)
    chosen = int(start)
    for k in range(num_select):
        selected[k] = chosen
        torch.addmv(norms, data, data[chosen], beta=1.0, alpha=-2.0, out=distances)
        distances += norms[chosen]
        torch.minimum(nearest, distances, out=nearest)
        nearest[chosen] = 0.0  # exact zero for the centre itself, whatever the rounding
        chosen = int(torch.argmax(nearest))
    return selected.numpy()


def greedy_coreset(features: np.ndarray, ratio: float, projection_dim: int, generator: torch.Generator,
                   min_select: int = 1) -> np.ndarray:
    """Greedy coreset of floor(ratio * P) rows (at least ``min_select``) on a random projection.

    Randomness (projection, then start index) comes from ``generator`` only.
    """
    num_points = len(features)
    num_select = min(num_points, max(min_select, int(np.floor(ratio * num_points))))
    projected = random_projection(features, projection_dim, generator)
    start = int(torch.randint(num_points, (1,), generator=generator).item())
    return greedy_kcenter(projected, num_select, start)
