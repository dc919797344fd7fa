"""Image and pixel AUROC per category (spec §3.1), and the pixel-map post-processing (spec §2.7)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.ndimage import gaussian_filter
from scipy.stats import rankdata

from .data.images import load_mask

METRIC_COLUMNS = ["dataset", "tail", "seed", "method", "category", "class_role", "metric", "value",
                  "n_test", "n_test_leaked", "test_protocol"]


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


def anomaly_maps(patch_scores: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """(n, h, w) patch scores -> (n, size, size) maps: bilinear upsampling (align_corners=False), then a
    Gaussian filter of ``sigma`` pixels (scipy defaults: truncate 4, mode 'reflect')."""
    grid = torch.from_numpy(np.ascontiguousarray(patch_scores, dtype=np.float32))[:, None]
    upsampled = F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    if sigma > 0:
        return np.stack([gaussian_filter(m, sigma=sigma) for m in upsampled])
    return upsampled


def evaluate_category(labels: list[str], mask_paths: list[str], image_scores: np.ndarray,
                      patch_scores: np.ndarray, resize: int, crop: int, sigma: float, gt_rule: str,
                      pixel: bool = True) -> dict[str, float]:
    """Image AUROC over the category's test images and full pixel AUROC over all their pixels."""
    is_anomalous = np.array([label != "good" for label in labels])
    result = {"image_auroc": auroc(is_anomalous, image_scores)}
    if pixel:
        maps = anomaly_maps(patch_scores, crop, sigma)
        truth = np.zeros(maps.shape, dtype=bool)
        for i, (anomalous, mask_path) in enumerate(zip(is_anomalous, mask_paths)):
            if anomalous:
                truth[i] = load_mask(mask_path, resize, crop, gt_rule)
                if not truth[i].any():
                    raise ValueError(f"mask {mask_path} is empty after resize/crop to {crop}px; its defect cannot "
                                     "be scored. Check the mask, or set evaluation.gt_rule: half")
        result["pixel_auroc"] = auroc(truth, maps)
    return result


def evaluate_run(scores: dict, manifest: pd.DataFrame, index: pd.DataFrame, run: dict, resize: int, crop: int,
                 sigma: float, gt_rule: str, protocol: str) -> pd.DataFrame:
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
        values = evaluate_category(info.loc[part["image_id"], "label"].tolist(),
                                   info.loc[part["image_id"], "mask_path"].tolist(),
                                   scores["image_scores"][pos], scores["patch_scores"][pos],
                                   resize, crop, sigma, gt_rule)
        for metric, value in values.items():
            rows.append({**run, "category": category, "class_role": part["class_role"].iloc[0], "metric": metric,
                         "value": value, "n_test": len(part), "n_test_leaked": int((part["role"] == "leaked").sum()),
                         "test_protocol": protocol})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)
