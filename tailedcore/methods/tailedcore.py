"""TailedCore (docs/protocol.md §2.6): memory = S_tail (TailSampler + augmented views + coreset) and S_clean
(position-wise LOF on all patches + coreset); 1-NN squared L2 scores (docs/protocol.md §2.7).

The parts the paper argues from can be switched off one by one (docs/ablation.md): the TailSampler
(``tail_mode: none``), the denoising filter (``denoise: false``: S_clean is a coreset of every patch), the
views (``tail_augmentation: none``), the tail threshold rule (``tail_cut``), and the tail branch can go through
the filter too (``tail_filter: true``: the predicted tail images' own patches that the filter drops stay out
of S_tail; their views are not filtered, since a turned view has no position-wise reference)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..features.augment import AUGMENTATIONS
from ..samplers.greedy import greedy_coreset, take_rows
from ..samplers.tail import TAIL_CUTS, TailSamplerConfig, estimate_tail
from .base import FeatureSet, Provenance, Scores, register, shared_coreset
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
    tail_cut: str = "min"  # the tail threshold rule K*: min(elbow, cap) (the paper) | elbow | cap
    denoise: bool = True  # false: no LOF filter, S_clean is a coreset of every training patch
    tail_filter: bool = False  # true: the tail images' own patches the filter drops stay out of S_tail
    num_neighbors: int = 1
    knn_backend: str = "auto"

    def __post_init__(self):
        if self.tail_augmentation not in AUGMENTATIONS:
            raise ValueError(f"unknown tail_augmentation {self.tail_augmentation!r}; choose from {AUGMENTATIONS}")
        if self.tail_cut not in TAIL_CUTS:
            raise ValueError(f"unknown tail_cut {self.tail_cut!r}; choose from {TAIL_CUTS}")
        if self.tail_filter and not self.denoise:
            raise ValueError("tail_filter: true needs the filter (denoise: true): there is nothing to filter with")


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
        if cfg.denoise:
            rows, _, report, filtered = denoise(train, cfg, self.generator)
        else:  # the ablation without the filter: S_clean from every patch, as PatchCore's bank
            rows, report, filtered = None, {"lof_kept_patches": int(len(flat)), "lof_dropped_patches": 0}, {}
        cells = int(np.prod(train.patches.shape[1:3]))
        clean = shared_coreset(
            train, flat, cfg.coreset_ratio, cfg.projection_dim, self.generator, rows=rows, progress="clean coreset"
        )
        clean = np.sort(clean) if rows is None else rows[np.sort(clean)]
        tail_rows: list[int] = []
        tail_extra = {}
        banks, origins = [], []  # (features, chosen rows), tail first; copied once into the memory bank
        if cfg.tail_mode != "none":
            estimate = estimate_tail(
                train.global_embeddings,
                TailSamplerConfig(
                    cfg.tail_mode,
                    cfg.tail_vote,
                    cfg.trim_percentile,
                    cfg.tail_mass_cap,
                    cfg.quantise_similarities,
                    cut=cfg.tail_cut,
                ),
            )
            tail_rows = np.flatnonzero(estimate.tail_mask).tolist()
            own = None  # the rows of the tail images' own patches in S_tail's candidates: all of them
            if cfg.tail_filter:  # only the rows the filter kept, read by index
                kept = filtered["filter_kept"][tail_rows].reshape(-1)
                own = (np.asarray(tail_rows, np.int64)[:, None] * cells + np.arange(cells)).reshape(-1)[kept]
                tail_patches = [flat[own]]
            else:
                tail_patches = [train.patches[tail_rows].reshape(-1, dim)]  # parts, never concatenated at full width
            if cfg.tail_augmentation != "none" and tail_rows:
                if train.augment is None:
                    raise RuntimeError("TailedCore needs image access for tail augmentation (FeatureSet.augment)")
                tail_patches.append(train.augment(tail_rows, cfg.tail_augmentation).reshape(-1, dim))
            if sum(map(len, tail_patches)):
                chosen = np.sort(
                    greedy_coreset(
                        tail_patches, cfg.coreset_ratio, cfg.projection_dim, self.generator, progress="tail coreset"
                    )
                )
            else:  # no candidate left (the filter dropped every patch of the tail images): an empty S_tail
                chosen = np.zeros(0, dtype=np.int64)
            banks.append((tail_patches, chosen))
            view_rows = sum(map(len, tail_patches[1:]))
            origins.append(Provenance.of_views(chosen, tail_rows, cells, view_rows, cfg.tail_augmentation, own=own))
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
