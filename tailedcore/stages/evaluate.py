"""Stage functions of rules/evaluate.smk: the per-class metrics of one run, every method at once; the truth of a
split's training pool and the diagnostics of one run (:mod:`tailedcore.evaluation.diagnostics`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..data.images import Geometry
from ..data.index import read_index
from ..data.longtail import read_manifest
from ..evaluation.metrics import METRIC_COLUMNS, EvaluationSpec, evaluate_run
from ..runtime.io import atomic_csv, load_npz, read_checked_csv
from ..scores import SCORE_KEYS
from .data import has_pixel_labels


def evaluate(
    *,
    scores_paths: dict[str, str],
    manifest_path,
    index_path,
    run: dict,
    spec: EvaluationSpec,
    protocol: str,
    outputs: dict[str, str],
) -> pd.DataFrame:
    """Per-class metrics of one run for every method (``scores_paths`` and ``outputs``: method -> file); pixel
    metrics when ``spec`` asks for them and the index has masks."""
    scores = {method: load_npz(path, "score file", SCORE_KEYS) for method, path in scores_paths.items()}
    index = read_index(index_path)
    spec = replace(spec, pixel=spec.pixel and has_pixel_labels(index))
    metrics = evaluate_run(
        scores=scores, manifest=read_manifest(manifest_path), index=index, run=run, spec=spec, protocol=protocol
    )
    for method, output in outputs.items():
        atomic_csv(metrics[metrics["method"] == method], output)
    return metrics


def read_metrics(metric_files: list[str]) -> pd.DataFrame:
    required = [c for c in METRIC_COLUMNS if c not in ("n_masks_emptied", "empty_masks", "pixel_resolution")]
    return pd.concat([read_checked_csv(f, "metrics", required) for f in metric_files], ignore_index=True)


def feature_grid(feature_folder, categories: list[str]) -> tuple[int, int]:
    """The (h, w) patch grid of a feature cache, from the header of one category's patches."""
    import numpy as np

    return tuple(
        int(v) for v in np.load(Path(feature_folder, f"{categories[0]}.patches.npy"), mmap_mode="r").shape[1:3]
    )


def make_patch_truth(*, manifest_path, index_path, geometry: Geometry, grid: tuple[int, int], output) -> dict:
    """The truth of a split's training pool on the feature grid
    (:func:`tailedcore.evaluation.diagnostics.patch_truth`)."""
    from ..evaluation.diagnostics import patch_truth, write_patch_truth

    truth = patch_truth(read_manifest(manifest_path), read_index(index_path), geometry, grid)
    write_patch_truth(output, truth)
    return truth


def diagnose(
    *, scores_paths: dict[str, str], truth_path, index_path, geometry: Geometry, run: dict, output
) -> pd.DataFrame:
    """The diagnostics of one run, every method at once (``scores_paths``: method -> score file; a method's
    provenance lies beside it as ``<method>.bank.npz``; without one, the method has no rows)."""
    from ..evaluation.diagnostics import RUN_COLUMNS, read_patch_truth, run_diagnostics, view_truth
    from ..scores import read_provenance

    truth = read_patch_truth(truth_path)
    masks = read_index(index_path).set_index("image_id")["mask_path"]
    paths = {row: masks.get(i) for row, i in enumerate(truth["image_ids"]) if truth["role"][row] == "noise"}
    views = view_truth(paths, geometry, truth["defect_fraction"].shape[1:])
    frames = []
    for method, scores in scores_paths.items():
        provenance = Path(scores).with_suffix(".bank.npz")
        if not provenance.exists():  # optional for methods added as rules
            continue
        score_file = load_npz(scores, "scores", ("image_ids", "patch_scores"))
        frame = run_diagnostics(truth, read_provenance(provenance), views, scores=score_file)
        frames.append(frame.assign(method=method))
    columns = ["dataset", "tail", "seed", "model_seed", "method", *RUN_COLUMNS]
    per_run = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    per_run = per_run.assign(**run)[columns]
    atomic_csv(per_run, output)
    return per_run
