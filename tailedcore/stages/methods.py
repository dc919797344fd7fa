"""Stage function of rules/methods.smk: fit a package method on a split's unified training pool and score
every test image (the score contract: :mod:`tailedcore.scores`).

torch and the methods are imported inside the functions, so that importing this module stays light."""

from __future__ import annotations

import platform
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..data.images import Geometry
from ..data.index import read_index
from ..data.longtail import read_manifest
from ..features.settings import FeatureSettings
from ..scores import feature_set, write_provenance, write_scores


def resolve_per_setting(value, dataset: str, tail: str):
    """A method option given per setting: a plain value, or a mapping whose most specific key wins:
    '<dataset>/<tail>' (e.g. 'mvtecad/step_k1'), '<dataset>/<kind>' ('mvtecad/step'), '<dataset>', 'default'."""
    if not isinstance(value, dict):
        return value
    kind = "step" if tail.startswith("step") else tail
    for key in (f"{dataset}/{tail}", f"{dataset}/{kind}", dataset, "default"):
        if key in value:
            return value[key]
    raise ValueError(f"no entry for {dataset}/{tail} in {value}; add a 'default' key")


def _augmenter(image_paths: list[str], features: FeatureSettings, scratch: Path):
    """Tail views computed with the backbone at fit time, for the flagged tail images only. They are written to
    a raw file in ``scratch`` batch by batch and read back on demand (``PatchRows``): at paper scale the views
    of the tail images alone hold gigabytes (47 views per image with rot15flip)."""
    from ..features.augment import tail_views
    from ..features.cache import FeatureExtractor
    from ..features.rows import CachedArray, PatchRows

    extractor = None

    def augment(rows: list[int], kind: str) -> PatchRows:
        nonlocal extractor
        extractor = extractor or FeatureExtractor(features)
        path = scratch / f"views-{kind}-{len(list(scratch.glob('views-*')))}.raw"
        grid, count, pending = None, 0, []
        with open(path, "wb") as handle:
            for number, row in enumerate(rows):
                pending += tail_views(image_paths[row], features.geometry, kind, extractor.fill)
                while len(pending) >= features.batch_size or (number == len(rows) - 1 and pending):
                    batch, pending = pending[: features.batch_size], pending[features.batch_size :]
                    patches = extractor(np.stack(batch))[0].astype(features.dtype)  # the cache's precision
                    handle.write(np.ascontiguousarray(patches).tobytes())
                    grid, count = patches.shape[1:], count + len(patches)
        if grid is None:  # no views (no rows): an empty set on the cache's grid
            grid = extractor(np.zeros((1, *features.geometry.shape, 3), np.uint8))[0].shape[1:]
        return PatchRows.of(CachedArray.raw(path, (count, *grid), features.dtype))

    return augment


def mask_padding(scores, geometry: Geometry, sizes: np.ndarray):
    """Pad geometry: the padding is never scored as a defect. Patch cells whose centre lies in the padding get
    the image's lowest content score, and the image score is the maximum over content cells (the image score
    of every package method is the maximum patch score)."""
    from ..methods.base import Scores

    patch_scores = np.array(scores.patch_scores, dtype=np.float32, copy=True)
    image_scores = np.empty(len(patch_scores), dtype=np.float32)
    for i, (width, height) in enumerate(sizes):
        cells = geometry.valid_cells(int(width), int(height), patch_scores.shape[1:])
        patch_scores[i][~cells] = patch_scores[i][cells].min()
        image_scores[i] = patch_scores[i][cells].max()
    return Scores(image_scores=image_scores, patch_scores=patch_scores, nearest=scores.nearest)


def tail_detection(report: dict, train_rows: pd.DataFrame) -> dict:
    """Precision and recall of the predicted tail images against the true tail images (clean images of
    tail classes)."""
    truth = set(train_rows.loc[(train_rows["class_role"] == "tail") & (train_rows["role"] == "clean"), "image_id"])
    predicted = set(report["predicted_tail_images"])
    hits = len(truth & predicted)
    return {
        "tail_true_images": len(truth),
        "tail_predicted_images": len(predicted),
        "tail_precision": hits / len(predicted) if predicted else float("nan"),
        "tail_recall": hits / len(truth) if truth else float("nan"),
    }


def _fit_parts(image_ids, feature_folder, categories, *, device, enabled: bool, folder):
    """The shared parts of this run's fit: beside its score file, keyed by the training images, the feature
    files they are read from and the device (:mod:`tailedcore.runtime.reuse`)."""
    from ..features.cache import cache_paths
    from ..runtime.reuse import FitParts, files_identity

    files = [cache_paths(feature_folder, c)[part] for c in categories for part in ("patches", "ids")]
    identity = {"images": list(image_ids), "features": files_identity(files), "device": str(device)}
    return FitParts(Path(folder) / ".fit_parts", identity, enabled=enabled)


def fit_cost(model, fit_seconds: float, score_seconds: float, test_images: int, device) -> dict:
    """What one run cost, measured inside its job: fit seconds (and of them the coreset, the denoising filter and
    the TailSampler), scoring seconds per test image and images per second (named as in anomalib's throughput
    proposal), memory-bank rows, the bytes a method keeps to score (its bank; PaDiM: its Gaussians), peak RSS
    and, on a GPU, peak GPU memory."""
    import resource

    import torch

    from ..runtime.compute import part_seconds

    parts = part_seconds()
    memory = getattr(model, "memory", None)
    cost = {
        "fit_seconds": fit_seconds,
        "coreset_seconds": parts.get("coreset", 0.0),
        "filter_seconds": parts.get("filter", 0.0),
        "tail_sampler_seconds": parts.get("tail_sampler", 0.0),
        "inference_seconds": score_seconds,
        "inference_seconds_per_image": score_seconds / max(test_images, 1),
        "inference_throughput_fps": test_images / score_seconds if score_seconds > 0 else float("nan"),
        "memory_bank_rows": int(len(memory)) if memory is not None else 0,
        "model_bytes": int(memory.nbytes) if memory is not None else int(_parameter_bytes(model)),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
        "device": str(device),
    }
    if device.type == "cuda":
        cost["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated())
    return cost


def _parameter_bytes(model) -> int:
    """What a model without a memory bank keeps (PaDiM: its per-position means and inverse covariances)."""
    total = 0
    for value in vars(model).values():
        if isinstance(value, np.ndarray):
            total += value.nbytes
        elif hasattr(value, "element_size") and hasattr(value, "nelement"):
            total += value.element_size() * value.nelement()
    return total


def run_method(
    *,
    method: str,
    options: dict,
    seed: int,
    manifest_path,
    index_path,
    feature_folder,
    categories: list[str],
    features: FeatureSettings,
    setting: tuple[str, str],
    scores_path,
    report_path,
    provenance_path,
    threads: int,
    device: str = "cpu",
    gpu: str | None = None,
    implementation: str | None = None,
    reuse_fits: bool = True,
) -> dict:
    """Fit a method on the split's training pool (all categories together), write the provenance of its
    memory bank and score every test image. ``implementation``: the package method that fits ``method`` (a
    variant's, docs/ablation.md; default ``method``). ``gpu``: the device index the job holds
    (:func:`tailedcore.runtime.gpu.claim_gpu`), recorded in the report. ``reuse_fits``: the parts of a fit that
    another fit of this split and model seed computed with the same inputs are read, not recomputed
    (:class:`tailedcore.runtime.reuse.FitParts`)."""
    import torch

    from ..features.cache import FeatureStore
    from ..methods.base import build_method
    from ..runtime.compute import reset_parts, set_device, set_threads

    set_threads(threads)
    resolved = set_device(device)
    options = {key: resolve_per_setting(value, *setting) for key, value in options.items()}
    generator = torch.Generator().manual_seed(seed)
    model = build_method(implementation or method, options, generator)
    manifest = read_manifest(manifest_path)
    info = read_index(index_path).set_index("image_id")
    geometry = features.geometry
    store = FeatureStore(feature_folder, categories)
    train_rows = manifest[manifest["subset"] == "train"]
    train = feature_set(store, train_rows, lazy=True)  # patches read on demand: memory bounded by what a fit keeps
    prefix = f".{method}-views-"  # tail views spilled during the fit, removed after it
    for stale in Path(scores_path).parent.glob(f"{prefix}*"):  # left by a killed job of this method and folder
        shutil.rmtree(stale, ignore_errors=True)
    train.parts = parts = _fit_parts(
        train.image_ids,
        feature_folder,
        categories,
        device=resolved,
        enabled=reuse_fits,
        folder=Path(scores_path).parent,
    )
    reset_parts()
    fit_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=prefix, dir=Path(scores_path).parent) as scratch:
        train.augment = _augmenter(info.loc[train.image_ids, "image_path"].tolist(), features, Path(scratch))
        report = model.fit(train)
        fit_seconds = time.perf_counter() - fit_started
        train_ids, grid = train.image_ids, train.patches.shape[1:3]
        del train
    if getattr(model, "provenance", None) is None:
        raise RuntimeError(f"method {method} set no provenance in fit (tailedcore.methods.base.Provenance)")
    if "predicted_tail_images" in report:
        report.update(tail_detection(report, train_rows))
    test_rows = manifest[manifest["subset"] == "test"]
    score_started = time.perf_counter()
    image_ids, image_scores, patch_scores, nearest = [], [], [], []
    for _, part in test_rows.groupby("category", sort=False):  # bounded memory: one category at a time
        scores = model.score(feature_set(store, part))
        if geometry.mode == "pad":
            scores = mask_padding(scores, geometry, info.loc[part["image_id"], ["width", "height"]].to_numpy())
        image_ids += part["image_id"].tolist()
        image_scores.append(scores.image_scores)
        patch_scores.append(scores.patch_scores)
        nearest.append(scores.nearest)
    matches = None  # which memory row every test patch matched, for the diagnostics of the test scores
    if nearest and all(part is not None for part in nearest):
        matches = (image_ids, np.concatenate(nearest))
    report["cost"] = fit_cost(model, fit_seconds, time.perf_counter() - score_started, len(image_ids), resolved)
    write_provenance(provenance_path, model.provenance, image_ids=train_ids, grid=grid, test_matches=matches)
    report["cost"].update(reused_parts=sorted(parts.reused), reused_seconds=sum(parts.reused.values()))
    report.update(
        {
            "method": method,
            "implementation": implementation or method,
            "options": asdict(model.config),
            "model_seed": seed,
            "dataset": setting[0],
            "tail": setting[1],
            "features": features.as_dict(),
            "tailedcore_version": __version__,
            "torch": torch.__version__,
            "device": str(resolved),
            "gpu": gpu,
            "threads": threads,
            "machine": platform.machine(),
        }
    )
    write_scores(
        scores_path,
        report_path,
        image_ids=image_ids,
        image_scores=np.concatenate(image_scores),
        patch_scores=np.concatenate(patch_scores),
        report=report,
    )
    return report
