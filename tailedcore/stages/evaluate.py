"""Stage function of rules/evaluate.smk: the per-class metrics of one run, every method at once."""

from __future__ import annotations

import pandas as pd

from ..data.index import read_index
from ..io import atomic_csv, load_npz, read_checked_csv
from ..metrics import METRIC_COLUMNS, EvaluationSpec, evaluate_run
from ..scores import SCORE_KEYS
from ..splits import read_manifest
from .data import has_pixel_labels


def evaluate(
    *,
    scores_paths: dict[str, str],
    manifest_path,
    index_path,
    run: dict,
    features: dict,
    evaluation: dict,
    protocol: str,
    outputs: dict[str, str],
) -> pd.DataFrame:
    """Per-class metrics of one run for every method (``scores_paths`` and ``outputs``: method -> file)."""
    scores = {method: load_npz(path, "score file", SCORE_KEYS) for method, path in scores_paths.items()}
    index = read_index(index_path)
    spec = EvaluationSpec.from_config(features, evaluation, pixel=has_pixel_labels(index))
    metrics = evaluate_run(
        scores=scores, manifest=read_manifest(manifest_path), index=index, run=run, spec=spec, protocol=protocol
    )
    for method, output in outputs.items():
        atomic_csv(metrics[metrics["method"] == method], output)
    return metrics


def read_metrics(metric_files: list[str]) -> pd.DataFrame:
    required = [c for c in METRIC_COLUMNS if c not in ("n_masks_emptied", "empty_masks", "pixel_resolution")]
    return pd.concat([read_checked_csv(f, "metrics", required) for f in metric_files], ignore_index=True)
