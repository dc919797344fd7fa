"""Image and pixel AUROC per category (docs/protocol.md §3.1), and the pixel maps (docs/protocol.md §2.7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from ..data.images import Geometry, load_mask
from .pixels import bilinear_matrix, native_pixel_metrics

METRIC_COLUMNS = [
    "dataset",
    "tail",
    "seed",
    "model_seed",
    "method",
    "category",
    "class_role",
    "metric",
    "value",
    "n_test",
    "n_test_leaked",
    "test_protocol",
    "n_masks_emptied",
    "empty_masks",
    "pixel_resolution",
]


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``, as the original code); both classes needed."""
    from sklearn.metrics import roc_auc_score

    labels = np.asarray(labels, dtype=bool).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes (got {n_pos} positives, {n_neg} negatives)")
    return float(roc_auc_score(labels, np.asarray(scores, dtype=np.float64).ravel()))


def anomaly_maps(patch_scores: np.ndarray, size, sigma: float) -> np.ndarray:
    """(n, h, w) patch scores -> (n, height, width) maps (``size``: an int for a square or (height, width)):
    bilinear upsampling (align_corners=False), then a Gaussian filter of ``sigma`` pixels (scipy defaults:
    truncate 4, mode 'reflect')."""
    height, width = (size, size) if np.isscalar(size) else size
    grid = np.asarray(patch_scores, dtype=np.float64)
    rows, cols = bilinear_matrix(grid.shape[1], height), bilinear_matrix(grid.shape[2], width)
    upsampled = (rows @ grid @ cols.T).astype(np.float32)
    if sigma > 0:
        return np.stack([gaussian_filter(m, sigma=sigma) for m in upsampled])
    return upsampled


@dataclass(frozen=True)
class EvaluationSpec:
    """How a run is evaluated: the geometry of images, masks and maps, and the evaluation block's options."""

    geometry: Geometry
    sigma: float = 4.0
    gt_rule: str = "exact_one"
    empty_masks: str = "keep"  # keep = the original protocol; drop = leave such images out of every metric
    pixel: bool = True  # False for datasets with image labels only
    extra: bool = False
    resolution: str = "model"  # model = on the geometry's grid (the paper's); native = each mask's own pixels

    @classmethod
    def from_config(cls, geometry: Geometry, evaluation: dict, pixel: bool = True) -> EvaluationSpec:
        return cls(
            geometry=geometry,
            sigma=evaluation.get("sigma", 4.0),
            gt_rule=evaluation.get("gt_rule", "exact_one"),
            empty_masks=evaluation.get("empty_masks", "keep"),
            pixel=pixel,
            extra=evaluation.get("extra_metrics", False),
            resolution=evaluation.get("resolution", "model"),
        )


def category_truth(*, labels: list[str], mask_paths: list[str], spec: EvaluationSpec) -> np.ndarray | None:
    """The ground truth of a category's test images on the geometry's grid (None without pixel labels, or at
    native resolution)."""
    if not spec.pixel or spec.resolution == "native":  # native: each mask is read at its own size, per method
        return None
    truth = np.zeros((len(labels), *spec.geometry.shape), dtype=bool)
    for i, (label, mask_path) in enumerate(zip(labels, mask_paths, strict=True)):
        if label != "good":
            truth[i] = load_mask(mask_path, spec.geometry, spec.gt_rule)
    return truth


def evaluate_category(
    *,
    labels: list[str],
    mask_paths: list[str],
    sizes: np.ndarray,
    image_scores: np.ndarray,
    patch_scores: np.ndarray,
    spec: EvaluationSpec,
    truth: np.ndarray | None = None,
) -> tuple[dict[str, float], int]:
    """Image AUROC over the category's test images and full pixel AUROC over all their image pixels (the
    padding of the pad geometry excluded); with ``spec.extra`` also the metrics beyond the paper (named
    ``extra_*``): image F1-max, pixel AP and pixel AUPRO up to FPR 0.3. ``truth``: the masks from
    :func:`category_truth`, when several methods are evaluated on the same images (read once).

    A defect image whose mask loses every defect pixel under the geometry is, by default, kept as the
    original code does (it counts in image AUROC, its pixels count as normal); ``empty_masks: drop`` leaves
    it out of every metric. Returns (metrics, number of such images).
    """
    is_anomalous = np.array([label != "good" for label in labels])
    native = spec.pixel and spec.resolution == "native"  # each mask at its own size: none is ever emptied
    keep = np.ones(len(labels), dtype=bool)
    emptied = 0
    if spec.pixel:
        maps = anomaly_maps(patch_scores, spec.geometry.shape, spec.sigma)
    if spec.pixel and not native:
        if truth is None:
            truth = category_truth(labels=labels, mask_paths=mask_paths, spec=spec)
        lost = is_anomalous & ~truth.reshape(len(truth), -1).any(axis=1)
        emptied = int(lost.sum())
        if spec.empty_masks == "drop":
            keep = ~lost
    result = {"image_auroc": auroc(is_anomalous[keep], image_scores[keep])}
    if spec.extra:
        result["extra_image_f1_max"] = f1_max(is_anomalous[keep], image_scores[keep])
    if native:
        pixels = native_pixel_metrics(labels, mask_paths, sizes, maps, geometry=spec.geometry, extra=spec.extra)
    elif spec.pixel:
        maps, truth, sizes = maps[keep], truth[keep], np.asarray(sizes)[keep]
        valid = None
        if spec.geometry.mode == "pad":
            valid = np.stack([spec.geometry.valid(int(w), int(h)) for w, h in sizes])
        if truth.any():
            pixels = pixel_metrics(truth, maps, valid, extra=spec.extra, fpr_limit=0.3)
        else:  # every defect was cut away: pixel metrics are undefined, not zero
            pixels = {"auroc": float("nan"), "ap": float("nan"), "aupro": float("nan")}
    if spec.pixel:
        result["pixel_auroc"] = pixels["auroc"]
        if spec.extra:
            result["extra_pixel_ap"] = pixels["ap"]
            result["extra_pixel_aupro_fpr30"] = pixels["aupro"]
    return result, emptied


def evaluate_run(
    *,
    scores: dict[str, dict],
    manifest: pd.DataFrame,
    index: pd.DataFrame,
    run: dict,
    spec: EvaluationSpec,
    protocol: str,
) -> pd.DataFrame:
    """Tidy metric rows of one run (dataset, tail, split seed, model seed) for every method of ``scores``
    (method -> its score file's arrays); each category's masks are read once."""
    test = manifest[manifest["subset"] == "test"]
    positions = {}
    for method, arrays in scores.items():
        positions[method] = {image_id: i for i, image_id in enumerate(arrays["image_ids"])}
        missing = sorted(set(test["image_id"]) - set(positions[method]))
        if missing:
            raise ValueError(
                f"the {method} score file lacks {len(missing)} test images (e.g. {missing[:3]}); rerun the method"
            )
    info = index.set_index("image_id")
    rows = []
    for category, part in test.groupby("category", sort=True):
        records = info.loc[part["image_id"]]
        labels, mask_paths = records["label"].tolist(), records["mask_path"].tolist()
        truth = category_truth(labels=labels, mask_paths=mask_paths, spec=spec)
        for method, arrays in scores.items():
            pos = np.array([positions[method][i] for i in part["image_id"]])
            values, emptied = evaluate_category(
                labels=labels,
                mask_paths=mask_paths,
                sizes=records[["width", "height"]].to_numpy(),
                image_scores=arrays["image_scores"][pos],
                patch_scores=arrays["patch_scores"][pos],
                spec=spec,
                truth=truth,
            )
            for metric, value in values.items():
                rows.append(
                    {
                        **run,
                        "method": method,
                        "category": category,
                        "class_role": part["class_role"].iloc[0],
                        "metric": metric,
                        "value": value,
                        "n_test": len(part),
                        "n_test_leaked": int((part["role"] == "leaked").sum()),
                        "test_protocol": protocol,
                        "n_masks_emptied": emptied,
                        "empty_masks": spec.empty_masks,
                        "pixel_resolution": spec.resolution if spec.pixel else "",
                    }
                )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    """The best F1 over all thresholds (an extra metric, not in the paper)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(np.asarray(labels, bool).ravel(), np.asarray(scores).ravel())
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.max())


def _region_weights(masks: np.ndarray) -> np.ndarray:
    """Per pixel 1 / (region size x number of regions) for the connected defect regions (8-connectivity,
    found once per mask), 0 elsewhere: the PRO curve is the cumulative sum of these in score order."""
    from scipy.ndimage import label as connected_components

    weights = np.zeros(masks.shape, dtype=np.float64)
    regions = []
    for i, mask in enumerate(masks):
        labelled, count = connected_components(mask, structure=np.ones((3, 3)))
        for region in range(1, count + 1):
            regions.append((i, labelled == region))
    for i, region in regions:
        weights[i][region] = 1.0 / (region.sum() * len(regions))
    return weights, len(regions)


def _aupro_sorted(weights: np.ndarray, negatives: np.ndarray, last_of_tie: np.ndarray, fpr_limit: float) -> float:
    fpr = np.cumsum(negatives) / negatives.sum()
    pro = np.cumsum(weights)
    fpr, pro = np.r_[0.0, fpr[last_of_tie]], np.r_[0.0, pro[last_of_tie]]
    keep = fpr <= fpr_limit
    end_pro = np.interp(fpr_limit, fpr, pro)
    fpr, pro = np.r_[fpr[keep], fpr_limit], np.r_[pro[keep], end_pro]
    return float(np.trapezoid(pro, fpr) / fpr_limit)


def aupro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3, valid: np.ndarray | None = None) -> float:
    """Normalised area under the per-region-overlap curve up to ``fpr_limit`` (an extra metric).

    PRO(t) = mean over all connected defect regions (8-connectivity, found once per mask) of the share of
    the region's pixels scored >= t; FPR(t) = share of defect-free pixels scored >= t. One sort of all
    pixels gives both curves exactly at every distinct score.
    """
    return pixel_metrics(np.asarray(masks, bool), maps, valid, extra=True, fpr_limit=fpr_limit)["aupro"]


def pixel_metrics(
    truth: np.ndarray, maps: np.ndarray, valid: np.ndarray | None = None, extra: bool = False, fpr_limit: float = 0.3
) -> dict[str, float]:
    """Pixel AUROC and, with ``extra``, pixel AP and AUPRO, from ONE sort of all pixels (the three
    curves at every distinct score; equal to scikit-learn's ``roc_auc_score`` and
    ``average_precision_score``, a test checks). Pixels outside ``valid`` (padding) are left out."""
    truth = np.asarray(truth, bool)
    labels = truth.ravel()
    inside = np.ones(labels.shape, bool) if valid is None else np.asarray(valid, bool).ravel()
    scores = np.asarray(maps, dtype=np.float64).ravel()
    order = np.argsort(-scores)  # ties are grouped below, so their order does not matter
    sorted_scores = scores[order]
    positives = (labels & inside)[order]
    negatives = (~labels & inside)[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tps, fps = np.cumsum(positives)[last_of_tie], np.cumsum(negatives)[last_of_tie]
    if tps[-1] == 0 or fps[-1] == 0:
        raise ValueError(f"pixel metrics need both classes (got {tps[-1]} defect, {fps[-1]} normal pixels)")
    result = {"auroc": float(np.trapezoid(np.r_[0.0, tps / tps[-1]], np.r_[0.0, fps / fps[-1]]))}
    if extra:
        recall = tps / tps[-1]
        counted = tps + fps  # 0 where only excluded (padding) pixels lie above the threshold: recall unchanged
        precision = np.divide(tps, counted, out=np.zeros(len(tps)), where=counted > 0)
        result["ap"] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
        weights, regions = _region_weights(truth & (True if valid is None else np.asarray(valid, bool)))
        if regions == 0:
            raise ValueError("AUPRO needs at least one defect region and one defect-free pixel")
        result["aupro"] = _aupro_sorted(weights.ravel()[order], negatives, last_of_tie, fpr_limit)
    return result
