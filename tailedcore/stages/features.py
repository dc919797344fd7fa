"""Stage functions of rules/features.smk: the per-category feature cache.

torch and the backbones are imported inside the functions, so that importing this module stays light."""

from __future__ import annotations

from ..data.index import read_index
from ..runtime.config import FEATURE_RUNTIME_KEYS


def with_runtime(features: dict, config: dict) -> dict:
    """A rule's features params (the number-changing keys) plus the runtime knobs from the config: batch size
    and device only choose how fast, so they are never params and never rerun a job."""
    return {**features, **{key: config["features"][key] for key in FEATURE_RUNTIME_KEYS}}


def feature_config(features: dict):
    """The config's features block without its scheduling keys (threads change no number)."""
    from ..features.cache import FeatureConfig

    return FeatureConfig(**{key: value for key, value in features.items() if key != "threads"})


def extract_features(*, index_path, category: str, features: dict, folder, threads: int) -> dict:
    import torch

    from ..features.cache import extract_category

    torch.set_num_threads(max(1, threads))
    return extract_category(read_index(index_path), category, feature_config(features), folder, threads=threads)
