"""PatchCore (docs/protocol.md §2.8): greedy coreset of all training patches, nearest-neighbour patch scores."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..features.knn import knn_search
from ..samplers.greedy import take_rows
from .base import FeatureSet, Provenance, Scores, register, shared_coreset


@dataclass(frozen=True)
class PatchCoreConfig:
    coreset_ratio: float = 0.1
    projection_dim: int = 128
    num_neighbors: int = 1
    knn_backend: str = "auto"


def nearest_neighbour_scores(
    patches: np.ndarray, memory: np.ndarray, num_neighbors: int, backend: str, weights: np.ndarray | None = None
) -> Scores:
    """Patch score = squared L2 distance to the nearest memory patch, times that patch's weight when
    ``weights`` are given (SoftPatch); mean over the k nearest when k > 1. Image score = max patch score."""
    n, h, w, d = patches.shape
    distances, indices = knn_search(patches.reshape(-1, d), memory, num_neighbors, backend)
    if weights is not None:
        distances = distances * weights[indices]
    patch_scores = distances.mean(axis=1).reshape(n, h, w).astype(np.float32)
    nearest = indices[:, 0].reshape(n, h, w).astype(np.int32)
    return Scores(image_scores=patch_scores.reshape(n, -1).max(axis=1), patch_scores=patch_scores, nearest=nearest)


@register("patchcore", PatchCoreConfig)
class PatchCore:
    def __init__(self, config: PatchCoreConfig, generator: torch.Generator):
        self.config = config
        self.generator = generator
        self.memory: np.ndarray | None = None
        self.provenance: Provenance | None = None

    def fit(self, train: FeatureSet) -> dict:
        started = time.perf_counter()
        flat = train.patches.reshape(-1, train.patches.shape[-1])
        chosen = shared_coreset(train, flat, self.config.coreset_ratio, self.config.projection_dim, self.generator)
        chosen = np.sort(chosen)
        self.memory = take_rows(flat, chosen)
        self.provenance = Provenance.of_rows(chosen, int(np.prod(train.patches.shape[1:3])))
        return {
            "train_patches": int(len(flat)),
            "memory_size": int(len(self.memory)),
            "fit_seconds": time.perf_counter() - started,
        }

    def score(self, test: FeatureSet) -> Scores:
        if self.memory is None:
            raise RuntimeError("PatchCore.score called before fit")
        return nearest_neighbour_scores(test.patches, self.memory, self.config.num_neighbors, self.config.knn_backend)
