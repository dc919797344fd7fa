"""TailedCore (docs/protocol.md §2.6): memory = S_tail (TailSampler + augmented views + coreset) and S_clean
(position-wise LOF on all patches + coreset); 1-NN squared L2 scores (docs/protocol.md §2.7)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..features.augment import AUGMENTATIONS
from ..samplers.greedy import greedy_coreset, take_rows
from ..samplers.tail import TailSamplerConfig, estimate_tail
from .base import FeatureSet, Provenance, Scores, register
from .patchcore import nearest_neighbour_scores
from .softpatch import DenoisedCoresetConfig, denoise


@dataclass(frozen=True)
class TailedCoreConfig(DenoisedCoresetConfig):
    tail_mode: str = "ada_trim_min"  # ada_trim_min | symmin | none (denoise-only ablation: no tail branch)
    tail_vote: str = "reverse"
    trim_percentile: float = 0.85
    tail_mass_cap: float = 0.15
    quantise_similarities: bool = True
    tail_augmentation: str = "rot15flip"
    num_neighbors: int = 1
    knn_backend: str = "auto"

    def __post_init__(self):
        if self.tail_augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown tail_augmentation {self.tail_augmentation!r}; choose from {AUGMENTATIONS}")


@register("tailedcore", TailedCoreConfig)
class TailedCore:
    def __init__(self, config: TailedCoreConfig, generator: torch.Generator):
        self.config, self.generator = config, generator
        self.memory: np.ndarray | None = None
        self.provenance: Provenance | None = None

    def fit(self, train: FeatureSet) -> dict:
        started = time.perf_counter()
        cfg = self.config
        dim = train.patches.shape[-1]
        flat = train.patches.reshape(-1, dim)
        # RNG order as the original: LOF projection, head projection + start, tail projection + start
        rows, _, report, filtered = denoise(train.patches, cfg, self.generator)
        cells = int(np.prod(train.patches.shape[1:3]))
        clean = rows[
            np.sort(
                greedy_coreset(
                    flat, cfg.coreset_ratio, cfg.projection_dim, self.generator, rows=rows, progress="clean coreset"
                )
            )
        ]
        tail_rows: list[int] = []
        tail_extra = {}
        banks, origins = [], []  # (features, chosen rows), tail first; copied once into the memory bank
        if cfg.tail_mode != "none":
            estimate = estimate_tail(
                train.global_embeddings,
                TailSamplerConfig(
                    cfg.tail_mode, cfg.tail_vote, cfg.trim_percentile, cfg.tail_mass_cap, cfg.quantise_similarities
                ),
            )
            tail_rows = np.flatnonzero(estimate.tail_mask).tolist()
            tail_patches = [train.patches[tail_rows].reshape(-1, dim)]  # parts, never concatenated at full width
            if cfg.tail_augmentation != "none" and tail_rows:
                if train.augment is None:
                    raise RuntimeError("TailedCore needs image access for tail augmentation (FeatureSet.augment)")
                tail_patches.append(train.augment(tail_rows, cfg.tail_augmentation).reshape(-1, dim))
            chosen = np.sort(
                greedy_coreset(
                    tail_patches, cfg.coreset_ratio, cfg.projection_dim, self.generator, progress="tail coreset"
                )
            )
            banks.append((tail_patches, chosen))
            view_rows = sum(map(len, tail_patches[1:]))
            origins.append(Provenance.of_views(chosen, tail_rows, cells, view_rows, cfg.tail_augmentation))
            tail_extra = {"tail_predicted": estimate.tail_mask.copy(), "class_size_estimate": estimate.class_sizes}
            report.update(
                tail_size_list=estimate.size_list,
                tail_elbow=estimate.elbow,
                tail_cap=estimate.cap,
                tail_cut=estimate.cut,
                tail_patches=int(sum(map(len, tail_patches))),
                tail_memory_size=int(len(chosen)),
                estimated_class_sizes=estimate.class_sizes.tolist(),
            )
        banks.append((flat, clean))
        origins.append(Provenance.of_rows(clean, cells))
        self.provenance = Provenance.concat(origins, **filtered, **tail_extra)
        self.memory = np.empty((sum(len(chosen) for _, chosen in banks), dim), dtype=np.float32)
        start = 0
        for features, chosen in banks:
            take_rows(features, chosen, out=self.memory[start : start + len(chosen)])
            start += len(chosen)
        report.update(
            train_patches=int(len(flat)),
            clean_memory_size=int(len(clean)),
            memory_size=int(len(self.memory)),
            predicted_tail_images=[train.image_ids[i] for i in tail_rows],
            fit_seconds=time.perf_counter() - started,
        )
        return report

    def score(self, test: FeatureSet) -> Scores:
        if self.memory is None:
            raise RuntimeError("TailedCore.score called before fit")
        return nearest_neighbour_scores(test.patches, self.memory, self.config.num_neighbors, self.config.knn_backend)
