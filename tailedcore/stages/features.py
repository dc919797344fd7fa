"""Stage functions of rules/features.smk: the per-category feature cache.

torch and the backbones are imported inside the functions, so that importing this module stays light."""

from __future__ import annotations

from ..data.index import read_index
from ..features.settings import FeatureSettings


def extract_features(*, index_path, category: str, features: FeatureSettings, folder, threads: int) -> dict:
    import torch

    from ..features.cache import extract_category

    torch.set_num_threads(max(1, threads))
    return extract_category(read_index(index_path), category, features, folder, threads=threads)
