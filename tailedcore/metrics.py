"""Image and pixel AUROC per category (spec §3.1), and the pixel-map post-processing (spec §2.7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter
from scipy.stats import rankdata

from .data.images import load_mask

METRIC_COLUMNS = [
    "dataset",
    "tail",
    "seed",
    "method",
    "category",
    "class_role",
    "metric",
    "value",
    "n_test",
    "n_test_leaked",
    "test_protocol",
]


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney statistic with average ranks for ties)."""
    labels = np.asarray(labels, dtype=bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes (got {n_pos} positives, {n_neg} negatives)")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _bilinear_matrix(size_in: int, size_out: int) -> np.ndarray:
    """(size_out, size_in) weights of bilinear resizing with align_corners=False (PyTorch's rule)."""
    source = np.maximum((np.arange(size_out) + 0.5) * size_in / size_out - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(int), size_in - 1)
    high = np.minimum(low + 1, size_in - 1)
    frac = source - low
    weights = np.zeros((size_out, size_in))
    np.add.at(weights, (np.arange(size_out), low), 1.0 - frac)
    np.add.at(weights, (np.arange(size_out), high), frac)
    return weights


def anomaly_maps(patch_scores: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(n, h, w) patch scores -> (n, size, size) maps: bilinear upsampling (align_corners=False), then a
    Gaussian filter of ``sigma`` pixels (scipy defaults: truncate 4, mode 'reflect')."""
    grid = np.asarray(patch_scores, dtype=np.float64)
    rows, cols = _bilinear_matrix(grid.shape[1], size), _bilinear_matrix(grid.shape[2], size)
    upsampled = (rows @ grid @ cols.T).astype(np.float32)
    if sigma > 0:
        return np.stack([gaussian_filter(m, sigma=sigma) for m in upsampled])
    return upsampled


def evaluate_category(
    labels: list[str],
    mask_paths: list[str],
    image_scores: np.ndarray,
    patch_scores: np.ndarray,
    resize: int,
    crop: int,
    sigma: float,
    gt_rule: str,
    pixel: bool = True,
    extra: bool = False,
) -> dict[str, float]:
    """Image AUROC over the category's test images and full pixel AUROC over all their pixels; with
    ``extra``, also the metrics beyond the paper (named ``extra_*``): image F1-max, pixel AP and pixel
    AUPRO up to FPR 0.3."""
    is_anomalous = np.array([label != "good" for label in labels])
    result = {"image_auroc": auroc(is_anomalous, image_scores)}
    if extra:
        result["extra_image_f1_max"] = f1_max(is_anomalous, image_scores)
    if pixel:
        maps = anomaly_maps(patch_scores, crop, sigma)
        truth = np.zeros(maps.shape, dtype=bool)
        for i, (anomalous, mask_path) in enumerate(zip(is_anomalous, mask_paths)):
            if anomalous:
                truth[i] = load_mask(mask_path, resize, crop, gt_rule)
                if not truth[i].any():
                    raise ValueError(
                        f"mask {mask_path} is empty after resize/crop to {crop}px; its defect cannot "
                        "be scored. Check the mask, or set evaluation.gt_rule: half"
                    )
        result["pixel_auroc"] = auroc(truth, maps)
        if extra:
            result["extra_pixel_ap"] = average_precision(truth, maps)
            result["extra_pixel_aupro_fpr30"] = aupro(truth, maps, 0.3)
    return result


def evaluate_run(
    scores: dict,
    manifest: pd.DataFrame,
    index: pd.DataFrame,
    run: dict,
    resize: int,
    crop: int,
    sigma: float,
    gt_rule: str,
    protocol: str,
    extra: bool = False,
) -> pd.DataFrame:
    """Tidy metric rows for one (dataset, tail, seed, method) from its score file."""
    position = {image_id: i for i, image_id in enumerate(scores["image_ids"])}
    test = manifest[manifest["subset"] == "test"]
    missing = sorted(set(test["image_id"]) - set(position))
    if missing:
        raise ValueError(f"the score file lacks {len(missing)} test images (e.g. {missing[:3]}); rerun the method")
    info = index.set_index("image_id")
    rows = []
    for category, part in test.groupby("category", sort=True):
        pos = np.array([position[i] for i in part["image_id"]])
        values = evaluate_category(
            info.loc[part["image_id"], "label"].tolist(),
            info.loc[part["image_id"], "mask_path"].tolist(),
            scores["image_scores"][pos],
            scores["patch_scores"][pos],
            resize,
            crop,
            sigma,
            gt_rule,
            extra=extra,
        )
        for metric, value in values.items():
            rows.append(
                {
                    **run,
                    "category": category,
                    "class_role": part["class_role"].iloc[0],
                    "metric": metric,
                    "value": value,
                    "n_test": len(part),
                    "n_test_leaked": int((part["role"] == "leaked").sum()),
                    "test_protocol": protocol,
                }
            )
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def f1_max(labels: np.ndarray, scores: np.ndarray) -> float:
    """The best F1 over all thresholds (an extra metric, not in the paper)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(np.asarray(labels, bool).ravel(), np.asarray(scores).ravel())
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(f1.max())


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve (an extra metric, not in the paper)."""
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(np.asarray(labels, bool).ravel(), np.asarray(scores).ravel()))


def aupro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3) -> float:
    """Normalised area under the per-region-overlap curve up to ``fpr_limit`` (an extra metric).

    PRO(t) = mean over all connected defect regions (8-connectivity, found once per mask) of the share of
    the region's pixels scored >= t; FPR(t) = share of defect-free pixels scored >= t. One sort of all
    pixels gives both curves exactly at every distinct score.
    """
    from scipy.ndimage import label as connected_components

    masks = np.asarray(masks, bool)
    weights = np.zeros(masks.shape, dtype=np.float64)
    regions = []
    for i, mask in enumerate(masks):
        labelled, count = connected_components(mask, structure=np.ones((3, 3)))
        for region in range(1, count + 1):
            regions.append((i, labelled == region))
    if not regions or masks.all():
        raise ValueError("AUPRO needs at least one defect region and one defect-free pixel")
    for i, region in regions:
        weights[i][region] = 1.0 / (region.sum() * len(regions))
    order = np.argsort(-np.asarray(maps, dtype=np.float64).ravel(), kind="stable")
    sorted_scores = np.asarray(maps, dtype=np.float64).ravel()[order]
    negatives = ~masks.ravel()[order]
    fpr = np.cumsum(negatives) / negatives.sum()
    pro = np.cumsum(weights.ravel()[order])
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]  # threshold = each distinct score
    fpr, pro = np.r_[0.0, fpr[last_of_tie]], np.r_[0.0, pro[last_of_tie]]
    keep = fpr <= fpr_limit
    end_pro = np.interp(fpr_limit, fpr, pro)
    fpr, pro = np.r_[fpr[keep], fpr_limit], np.r_[pro[keep], end_pro]
    return float(np.trapezoid(pro, fpr) / fpr_limit)
