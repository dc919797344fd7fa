"""Defect coverage under a geometry, and the dataset summary: computed from the index, the file headers and
the masks alone, before any feature is computed.

Coverage of a defect image: ``pixels_before`` (defect pixels of the source mask), ``pixels_after`` (defect
pixels on the geometry's grid, as the evaluation sees them, ``gt_rule`` applied) and ``fraction_kept`` =
pixels_after / (pixels_before x output pixels per source pixel): 1 when the whole defect survives, 0 when the
crop cut it away or downscaling thinned it out.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from .images import Geometry, read_mask, transform_mask

log = logging.getLogger(__name__)

COVERAGE_COLUMNS = [
    "image_id",
    "category",
    "label",
    "mask_path",
    "pixels_before",
    "pixels_after",
    "fraction_kept",
    "emptied",
    "source_empty",
]


def defect_coverage(index: pd.DataFrame, geometry: Geometry, gt_rule: str) -> pd.DataFrame:
    """One row per defective test image with a mask (columns ``COVERAGE_COLUMNS``)."""
    rows = index[(index["split"] == "test") & (index["label"] != "good") & (index["mask_path"] != "")]

    def one(record):
        binary = read_mask(record.mask_path)
        before = int(binary.sum())
        after = int(transform_mask(binary, geometry, gt_rule).sum())
        scale = geometry.area_scale(int(record.width), int(record.height))
        fraction = after / (before * scale) if before else float("nan")
        return {
            "image_id": record.image_id,
            "category": record.category,
            "label": record.label,
            "mask_path": record.mask_path,
            "pixels_before": before,
            "pixels_after": after,
            "fraction_kept": round(min(fraction, 1.0), 4) if before else float("nan"),
            "emptied": after == 0,
            "source_empty": before == 0,
        }

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        records = list(pool.map(one, rows.itertuples(index=False)))
    return pd.DataFrame(records, columns=COVERAGE_COLUMNS)


def coverage_messages(coverage: pd.DataFrame, geometry: Geometry, resolution: str = "model") -> list[str]:
    """One line per category: how many defect masks lose every defect pixel, and which masks are all zero.
    ``resolution``: where pixel metrics are computed (evaluation.resolution); at ``native`` no mask is lost."""
    lines = []
    for category, part in coverage.groupby("category", sort=True):
        lost = part[part["emptied"] & ~part["source_empty"]]
        text = (
            f"{category}: {len(lost)} of {len(part)} defect masks lose every defect pixel under {geometry.describe()}"
        )
        if resolution == "native":
            text += (
                " on the model's grid; pixel metrics are computed at each mask's own resolution "
                "(evaluation.resolution: native), where no mask loses a pixel"
            )
        elif len(lost) and geometry.mode != "pad":
            text += (
                " — consider evaluation.resolution: native (pixel metrics on each mask's own pixels), or "
                "features.geometry: pad (the whole image, aspect kept)"
            )
        elif len(lost):
            text += (
                " — consider evaluation.resolution: native (pixel metrics on each mask's own pixels), or a "
                "larger features.size: the defects are too thin for this one"
            )
        lines.append(text)
        empty = part[part["source_empty"]]
        if len(empty):
            lines.append(
                f"{category}: {len(empty)} defect image(s) have an all-zero mask (labelled defective, no defect "
                f"pixel): {', '.join(empty['mask_path'].head(10))}{' ...' if len(empty) > 10 else ''}"
            )
    return lines


def dataset_summary(index: pd.DataFrame, coverage: pd.DataFrame, geometry: Geometry) -> pd.DataFrame:
    """Per category: images per split and label, image sizes and aspect ratios, defect coverage."""
    rows = []
    for category, part in index.groupby("category", sort=True):
        test = part[part["split"] == "test"]
        cover = coverage[coverage["category"] == category]
        aspect = part["width"] / part["height"]
        rows.append(
            {
                "category": category,
                "train_good": int((part["split"] == "train").sum()),
                "test_good": int((test["label"] == "good").sum()),
                "test_defect": int((test["label"] != "good").sum()),
                "defect_types": ",".join(sorted(set(test["label"]) - {"good"})),
                "with_masks": int(len(cover)),
                "distinct_sizes": int(part[["width", "height"]].drop_duplicates().shape[0]),
                "min_size": f"{part['width'].min()}x{part['height'].min()}",
                "max_size": f"{part['width'].max()}x{part['height'].max()}",
                "aspect_min": round(float(aspect.min()), 3),
                "aspect_median": round(float(aspect.median()), 3),
                "aspect_max": round(float(aspect.max()), 3),
                "geometry": geometry.describe(),
                "masks_emptied": int((cover["emptied"] & ~cover["source_empty"]).sum()),
                "masks_all_zero": int(cover["source_empty"].sum()),
                "median_fraction_kept": round(float(np.nanmedian(cover["fraction_kept"])), 4)
                if cover["fraction_kept"].notna().any()
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def summary_markdown(summary: pd.DataFrame, dataset: str, lines: list[str]) -> str:
    header = "| " + " | ".join(summary.columns) + " |\n|" + "---|" * len(summary.columns) + "\n"
    body = "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in summary.itertuples(index=False))
    notes = "".join(f"- {line}\n" for line in lines)
    return f"# Dataset {dataset}\n\n{header}{body}\n{notes}"
