"""The score contract, the stable API of every method (package class or a rule in rules/baselines/):
``load_split`` gives the cached features of a split, ``write_scores`` checks and writes a run's score file and
report, ``SCORE_KEYS`` names the arrays a score file holds (docs/architecture.md, "Scores"). Import from
here: ``from tailedcore.scores import load_split, write_scores``. A method may also write the provenance of
its memory bank (``write_provenance``, optional): the diagnostics use it (docs/architecture.md, "Provenance")."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .data.longtail import read_manifest
from .runtime.io import atomic_path, atomic_text

SCORE_KEYS = ("image_ids", "image_scores", "patch_scores")
PROVENANCE_KEYS = ("image_ids", "grid", "memory_bank", "image", "cell", "view", "view_kind")
PROVENANCE_OPTIONAL = ("filter_score", "filter_kept", "tail_predicted", "class_size_estimate")


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


def write_provenance(path, provenance, *, image_ids: list[str], grid: tuple[int, int], test_matches=None) -> None:
    """Check and write the provenance of a fitted model's memory bank (docs/architecture.md, "Provenance"):
    ``provenance`` is a :class:`tailedcore.methods.base.Provenance` over the training images ``image_ids`` (in
    the order the method saw them) and their (h, w) patch ``grid``. About 10 bytes per memory row, 5 per
    training patch when the model has a denoising filter. ``test_matches``: (test image ids, (m, h, w) memory row
    each test patch matched), 4 bytes per test patch, for the diagnostics of the test scores."""
    n, cells = len(image_ids), int(grid[0]) * int(grid[1])
    image, cell, view = (np.asarray(getattr(provenance, k)) for k in ("image", "cell", "view"))
    problems = []
    if not len(image) == len(cell) == len(view):
        problems.append(f"{len(image)} image, {len(cell)} cell and {len(view)} view entries (one each per memory row)")
    elif len(image) and (
        image.min() < 0 or image.max() >= n or cell.min() < 0 or cell.max() >= cells or view.min() < 0
    ):
        problems.append(f"a memory row points outside the {n} training images, their {cells} cells or their views")
    if view.size and view.max() > 0 and provenance.view_kind == "none":
        problems.append("memory rows from augmented views, but view_kind is 'none'")
    per_patch, per_image = (n, *grid), (n,)
    optional = {}
    for key, shape in zip(PROVENANCE_OPTIONAL, (per_patch, per_patch, per_image, per_image)):
        value = getattr(provenance, key)
        if value is None:
            continue
        value = np.asarray(value)
        if value.shape != shape:
            problems.append(f"{key} has shape {value.shape}, not {shape}")
        elif value.dtype.kind == "f" and not np.isfinite(value).all():
            problems.append(f"{key} holds NaN or infinite values")
        optional[key] = value
    if test_matches is not None:
        test_ids, test_nearest = test_matches[0], np.asarray(test_matches[1])
        if test_nearest.shape != (len(test_ids), *grid):
            problems.append(f"test_nearest has shape {test_nearest.shape}, not {(len(test_ids), *grid)}")
        elif test_nearest.size and (test_nearest.min() < 0 or test_nearest.max() >= len(image)):
            problems.append(f"a test patch matched a row outside the {len(image)} memory rows")
        optional.update(test_image_ids=np.array(test_ids), test_nearest=test_nearest.astype(np.int32))
    if problems:
        raise ValueError(f"provenance for {path}: " + "; ".join(problems))
    if "filter_kept" in optional:  # one bit per training patch
        optional["filter_kept"] = np.packbits(optional["filter_kept"].astype(bool).ravel())
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        np.savez(
            handle,
            image_ids=np.array(image_ids),
            grid=np.array(grid, dtype=np.int32),
            memory_bank=np.array(bool(provenance.memory_bank)),
            image=image.astype(np.int32),
            cell=cell.astype(np.int32),
            view=view.astype(np.int16),
            view_kind=np.array(provenance.view_kind),
            **optional,
        )


def read_provenance(path) -> dict:
    """The arrays of a provenance file, checked; ``filter_kept`` unpacked to (n, h, w) bool when present."""
    from .runtime.io import load_npz

    data = load_npz(path, "provenance", PROVENANCE_KEYS)
    grid = tuple(int(v) for v in data["grid"])
    if "filter_kept" in data:
        count = len(data["image_ids"]) * grid[0] * grid[1]
        data["filter_kept"] = np.unpackbits(data["filter_kept"], count=count).astype(bool).reshape(-1, *grid)
    data["memory_bank"], data["view_kind"] = bool(data["memory_bank"]), str(data["view_kind"])
    data["grid"] = grid
    return data


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
