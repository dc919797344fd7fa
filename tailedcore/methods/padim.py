"""PaDiM (Defard et al., ICPR 2021) on the unified training pool: one multivariate Gaussian per patch
position over a random subset of feature channels; patch score = Mahalanobis distance.

Differences from the original (also in docs/methods.md, "Methods"): it reads the shared cached patch features (the
PatchCore aggregation of the backbone's two stages) instead of concatenating layer1-3 maps, and the
image score is the maximum patch score, as for the other methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..features.rows import read_positions
from .base import FeatureSet, Provenance, Scores, register


@dataclass(frozen=True)
class PaDiMConfig:
    num_channels: int = 550  # the original's random subset size for wide_resnet50_2
    covariance_eps: float = 0.01


@register("padim", PaDiMConfig)
class PaDiM:
    def __init__(self, config: PaDiMConfig, generator: torch.Generator):
        self.config, self.generator = config, generator
        self.channels = self.mean = self.precision = None
        self.provenance: Provenance | None = None

    def fit(self, train: FeatureSet) -> dict:
        started = time.perf_counter()
        num, height, width, dim = train.patches.shape
        if num < 2:
            raise ValueError("PaDiM needs at least two training images")
        keep = min(self.config.num_channels, dim)
        self.channels = torch.sort(torch.randperm(dim, generator=self.generator)[:keep]).values.numpy()
        self.mean = torch.empty(height * width, keep, dtype=torch.float64)  # (hw, c)
        self.precision = torch.empty(height * width, keep, keep, dtype=torch.float32)
        identity = torch.eye(keep, dtype=torch.float64)
        for start in range(0, height * width, 64):  # bounded memory: 64 positions of every image at a time
            stop = min(start + 64, height * width)
            features = torch.from_numpy(
                np.ascontiguousarray(read_positions(train.patches, start, stop)[..., self.channels])
            )
            self.mean[start:stop] = features.mean(dim=0, dtype=torch.float64)
            centred = features.to(torch.float64) - self.mean[start:stop]
            covariance = (
                torch.einsum("npc,npd->pcd", centred, centred) / (num - 1) + self.config.covariance_eps * identity
            )
            self.precision[start:stop] = torch.linalg.inv(covariance).to(torch.float32)
        empty = np.zeros(0, np.int32)
        self.provenance = Provenance(empty, empty, empty.astype(np.int16), memory_bank=False)  # Gaussians, no bank
        return {
            "train_patches": int(num * height * width),
            "channels": int(keep),
            "memory_size": int(height * width),
            "fit_seconds": time.perf_counter() - started,
        }

    def score(self, test: FeatureSet) -> Scores:
        if self.precision is None:
            raise RuntimeError("PaDiM.score called before fit")
        num, height, width, _ = test.patches.shape
        features = torch.from_numpy(test.patches[..., self.channels].reshape(num, height * width, -1))
        centred = features.to(torch.float64) - self.mean
        squared = torch.einsum("npc,pcd,npd->np", centred, self.precision.to(torch.float64), centred)
        patch_scores = squared.clamp_min(0).sqrt().reshape(num, height, width).numpy().astype(np.float32)
        return Scores(image_scores=patch_scores.reshape(num, -1).max(axis=1), patch_scores=patch_scores)
