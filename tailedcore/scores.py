"""The score contract, the stable API of every method (package class or a rule in rules/baselines/):
``load_split`` gives the cached features of a split, ``write_scores`` checks and writes a run's score file and
report, ``SCORE_KEYS`` names the arrays a score file holds (docs/architecture.md, "Scores"). Import from
here: ``from tailedcore.scores import load_split, write_scores``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .io import atomic_path, atomic_text
from .splits import read_manifest

SCORE_KEYS = ("image_ids", "image_scores", "patch_scores")


def write_scores(
    scores_path, report_path, *, image_ids: list[str], image_scores: np.ndarray, patch_scores: np.ndarray, report: dict
) -> None:
    """Write a run's score file and its JSON report (docs/architecture.md, "Scores"): one image score and one
    (h, w) patch-score map per test image, float32, in the order of ``image_ids``; higher = more anomalous."""
    image_scores = np.asarray(image_scores, dtype=np.float32).reshape(-1)
    patch_scores = np.asarray(patch_scores, dtype=np.float32)
    if not (len(image_ids) == len(image_scores) == len(patch_scores)) or patch_scores.ndim != 3:
        raise ValueError(
            f"scores for {scores_path}: {len(image_ids)} image ids, {len(image_scores)} image scores and "
            f"patch maps of shape {patch_scores.shape}; need one score and one (h, w) map per image"
        )
    if not (np.isfinite(image_scores).all() and np.isfinite(patch_scores).all()):
        raise ValueError(f"scores for {scores_path} contain NaN or infinite values")
    atomic_text(report_path, json.dumps(report, indent=2, default=str))
    with atomic_path(scores_path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, image_ids=np.array(image_ids), image_scores=image_scores, patch_scores=patch_scores)


def feature_set(store, rows: pd.DataFrame, patches: bool = True, lazy: bool = False):
    """The FeatureSet of manifest ``rows``; without ``patches`` only the global embeddings are read and
    ``patches`` is an empty (n, h, w, 0) array that still gives the patch grid. ``lazy``: ``patches`` is a
    :class:`tailedcore.features.rows.PatchRows` read on demand (a fit's training pool) instead of an array."""
    from .methods.base import FeatureSet

    ids, categories = rows["image_id"].tolist(), rows["category"].tolist()
    if patches and lazy:
        patch_features = store.patch_rows(ids, categories)
    elif patches:
        patch_features = store.patch_features(ids, categories)
    else:
        grid = next(iter(store.patches.values())).shape[1:3]
        patch_features = np.empty((len(ids), *grid, 0), dtype=np.float16)
    return FeatureSet(ids, patch_features, store.global_features(ids, categories))


def load_split(manifest_path, feature_folder, categories: list[str], patches: bool = True):
    """The cached features of a split, for a baseline written as a rule: returns (train, test) FeatureSets
    (training pool of every class together, and the test images in manifest order). With ``patches=False``
    only the global embeddings are read, and each set's ``patches`` is an empty (n, h, w, 0) array that
    still gives the patch grid."""
    from .features.cache import FeatureStore

    store = FeatureStore(feature_folder, categories)
    manifest = read_manifest(manifest_path)
    train, test = (feature_set(store, manifest[manifest["subset"] == subset], patches) for subset in ("train", "test"))
    return train, test
