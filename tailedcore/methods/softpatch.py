"""SoftPatch (docs/protocol.md §2.8): position-wise LOF denoising, greedy coreset of the kept patches, and patch
scores weighted by the LOF of the nearest memory patch."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..runtime.reuse import computed
from ..samplers.greedy import take_rows
from ..samplers.lof import lof_keep_mask, positionwise_lof
from .base import FeatureSet, Provenance, Scores, register, shared_coreset
from .patchcore import nearest_neighbour_scores


@dataclass(frozen=True)
class DenoisedCoresetConfig:
    """The options of a LOF-denoised coreset (shared by SoftPatch and TailedCore's S_clean)."""

    coreset_ratio: float = 0.1
    projection_dim: int = 128
    lof_k: int = 6
    lof_keep_ratio: float = 0.85
    lof_projection_dim: int = 128


@dataclass(frozen=True)
class SoftPatchConfig(DenoisedCoresetConfig):
    num_neighbors: int = 1
    knn_backend: str = "auto"


def denoise(
    train: FeatureSet, config: DenoisedCoresetConfig, generator: torch.Generator
) -> tuple[np.ndarray, np.ndarray, dict, dict]:
    """LOF-filter all training patches: (kept patch rows of the flattened patches, their LOF, report, and the
    filter's view of every patch for the provenance: ``filter_score`` and ``filter_kept``, (n, h, w) each).
    The LOF scores go through the fit's shared parts (SoftPatch's are TailedCore's)."""
    scores = computed(
        train.parts,
        "filter",
        {"lof_k": config.lof_k, "projection_dim": config.lof_projection_dim},
        generator,
        lambda: positionwise_lof(train.patches, config.lof_k, config.lof_projection_dim, generator),
    )
    keep = lof_keep_mask(scores, config.lof_keep_ratio)
    rows = np.flatnonzero(keep.ravel())
    report = {"lof_kept_patches": int(len(rows)), "lof_dropped_patches": int((~keep).sum())}
    return rows, scores.ravel()[rows], report, {"filter_score": scores.astype(np.float32), "filter_kept": keep}


@register("softpatch", SoftPatchConfig)
class SoftPatch:
    def __init__(self, config: SoftPatchConfig, generator: torch.Generator):
        self.config, self.generator = config, generator
        self.memory: np.ndarray | None = None
        self.weights: np.ndarray | None = None
        self.provenance: Provenance | None = None

    def fit(self, train: FeatureSet) -> dict:
        started = time.perf_counter()
        flat = train.patches.reshape(-1, train.patches.shape[-1])
        rows, lof, report, filtered = denoise(train, self.config, self.generator)
        ratio, projection_dim = self.config.coreset_ratio, self.config.projection_dim
        chosen = np.sort(shared_coreset(train, flat, ratio, projection_dim, self.generator, rows=rows))
        self.memory = take_rows(flat, rows[chosen])
        self.weights = lof[chosen].astype(np.float32)
        self.provenance = Provenance.of_rows(rows[chosen], int(np.prod(train.patches.shape[1:3])), **filtered)
        report.update(
            train_patches=int(len(flat)), memory_size=int(len(self.memory)), fit_seconds=time.perf_counter() - started
        )
        return report

    def score(self, test: FeatureSet) -> Scores:
        if self.memory is None:
            raise RuntimeError("SoftPatch.score called before fit")
        return nearest_neighbour_scores(
            test.patches, self.memory, self.config.num_neighbors, self.config.knn_backend, self.weights
        )
