"""Position-wise LOF noise discriminator (SoftPatch; docs/protocol.md §2.3).

Every patch is compared only with the patches at the same (y, x) of the other training images: one Local
Outlier Factor model per position, on a random 128-d projection. The patches whose LOF is at or above
the ``keep_ratio`` quantile are dropped.
"""

from __future__ import annotations

import numpy as np
import torch

from ..runtime.compute import current_device, resolve_device, timed_part
from ..runtime.logs import ProgressLog
from .greedy import random_projection


@torch.no_grad()
def local_outlier_factor(points: torch.Tensor, k: int) -> torch.Tensor:
    """LOF of every point of each batch (B, N, D) -> (B, N), as scikit-learn's ``-negative_outlier_factor_``.

    k-distance excludes the point itself; reach-dist(a, b) = max(k-dist(b), d(a, b));
    lrd(a) = 1 / (mean reach-dist over a's k neighbours + 1e-10); LOF(a) = mean lrd(neighbours) / lrd(a).
    """
    batch, num, _ = points.shape
    k = min(k, num - 1)
    if k < 1:
        return torch.ones(batch, num, dtype=torch.float64)
    points = points.to(torch.float64)
    distances = torch.cdist(points, points)
    distances.diagonal(dim1=1, dim2=2).fill_(float("inf"))  # a point is not its own neighbour
    knn_dist, knn_idx = torch.topk(distances, k, dim=2, largest=False, sorted=True)
    k_distance = knn_dist[..., -1]  # (B, N)
    neighbour_k_distance = torch.gather(k_distance.unsqueeze(1).expand(batch, num, num), 2, knn_idx)
    reach = torch.maximum(knn_dist, neighbour_k_distance)
    lrd = 1.0 / (reach.mean(dim=2) + 1e-10)
    neighbour_lrd = torch.gather(lrd.unsqueeze(1).expand(batch, num, num), 2, knn_idx)
    return (neighbour_lrd / lrd.unsqueeze(2)).mean(dim=2)


@timed_part("filter")
def positionwise_lof(
    patches: np.ndarray,
    k: int,
    projection_dim: int,
    generator: torch.Generator,
    max_batch_elements: int = 20_000_000,
    device: str | None = None,
) -> np.ndarray:
    """patches (N, h, w, d) -> LOF score of every patch (N, h, w); one LOF model per position.

    Positions are processed in batches whose N x N distance matrices hold at most ``max_batch_elements``
    (float64), on ``device`` (None = the process's, ``compute.set_device``).
    """
    target = resolve_device(device or current_device())
    num, height, width, dim = patches.shape
    positions_per_batch = max(1, max_batch_elements // (num * num))
    projected = random_projection(patches.reshape(-1, dim), projection_dim, generator)
    by_position = torch.from_numpy(projected.reshape(num, height * width, -1)).permute(1, 0, 2)  # (hw, N, p)
    scores = torch.empty(height * width, num, dtype=torch.float64)
    progress = ProgressLog("LOF: positions", height * width)
    for start in range(0, height * width, positions_per_batch):
        progress.update(start)
        batch = by_position[start : start + positions_per_batch].to(target)
        scores[start : start + positions_per_batch] = local_outlier_factor(batch, k).cpu()
    return scores.permute(1, 0).reshape(num, height, width).numpy()


def lof_keep_mask(scores: np.ndarray, keep_ratio: float) -> np.ndarray:
    """True for the patches kept: LOF strictly below the ``keep_ratio`` quantile (linear interpolation)."""
    threshold = np.quantile(scores.ravel(), keep_ratio)
    return scores < threshold
