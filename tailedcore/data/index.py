"""Dataset index: one row per image, the only view of a dataset that later stages use.

Columns: ``image_id, category, split (train|test), label (good|<defect type>), image_path, mask_path``.
Paths are absolute. ``image_id`` is ``<category>/<split>/<label>/<file stem>`` and unique.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

INDEX_COLUMNS = ["image_id", "category", "split", "label", "image_path", "mask_path"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


class DatasetLayoutError(ValueError):
    """The dataset on disk does not have the expected layout; the message names the path and the fix."""


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def build_mvtec_index(root: str | Path, categories: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Index an MVTec-AD-layout folder: ``<category>/{train/good, test/<label>, ground_truth/<label>}``.

    Every anomalous test image needs ``ground_truth/<label>/<stem>_mask.png``. Errors name the offending
    path and what to do; nothing is silently skipped.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist; check the dataset path in the config")
    present = sorted(p.name for p in root.iterdir() if p.is_dir())
    missing = [c for c in categories if c not in present]
    if missing:
        raise DatasetLayoutError(
            f"categories {missing} are not folders of {root} (found: {present}); fix the dataset's "
            "`categories` list in the config or the dataset folder"
        )
    rows = []
    for category in categories:
        cat_dir = root / category
        train_dir, test_dir = cat_dir / "train" / "good", cat_dir / "test"
        for needed in (train_dir, test_dir):
            if not needed.is_dir():
                raise DatasetLayoutError(
                    f"{needed} is missing: an MVTec-layout category needs train/good/ and test/<label>/ "
                    "(and ground_truth/<label>/<name>_mask.png for every defect image)"
                )
        train_images = _images_in(train_dir)
        if not train_images:
            raise DatasetLayoutError(f"{train_dir} holds no images ({sorted(IMAGE_SUFFIXES)})")
        rows += [_row(category, "train", "good", p, None) for p in train_images]
        labels = sorted(p.name for p in test_dir.iterdir() if p.is_dir())
        if "good" not in labels:
            raise DatasetLayoutError(f"{test_dir / 'good'} is missing: the test split needs normal images")
        for label in labels:
            for image in _images_in(test_dir / label):
                mask = None
                if label != "good":
                    mask = cat_dir / "ground_truth" / label / f"{image.stem}_mask.png"
                    if not mask.is_file():
                        raise DatasetLayoutError(
                            f"mask {mask} for defect image {image} is missing; add the binary mask "
                            "(non-zero = defect) or remove the image"
                        )
                rows.append(_row(category, "test", label, image, mask))
    return finish_index(pd.DataFrame(rows, columns=INDEX_COLUMNS))


def _row(category: str, split: str, label: str, image: Path, mask: Path | None) -> dict:
    return {
        "image_id": f"{category}/{split}/{label}/{image.stem}",
        "category": category,
        "split": split,
        "label": label,
        "image_path": str(image.resolve()),
        "mask_path": str(mask.resolve()) if mask is not None else "",
    }


def finish_index(index: pd.DataFrame) -> pd.DataFrame:
    """Sort by (category, split, label, image_id) and check the invariants every stage relies on."""
    dup = index["image_id"][index["image_id"].duplicated()]
    if len(dup):
        raise DatasetLayoutError(f"duplicate image ids {dup.tolist()[:5]}: two files share a stem in one folder")
    for category, part in index.groupby("category"):
        test = part[part["split"] == "test"]
        if not (test["label"] != "good").any():
            raise DatasetLayoutError(f"category {category} has no anomalous test image; AUROC is undefined")
    return index.sort_values(["category", "split", "label", "image_id"], kind="stable").reset_index(drop=True)


def read_index(path: str | Path) -> pd.DataFrame:
    index = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(index.columns) != INDEX_COLUMNS:
        raise DatasetLayoutError(f"{path} is not a dataset index (columns {list(index.columns)}); rebuild it")
    return index


def build_visa_index(root: str | Path, categories: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Index VisA straight from ``split_csv/1cls.csv`` (columns object, split, label, image, mask); no copying.

    ``normal`` becomes label ``good``, anything else ``bad``, as in the official conversion.
    """
    root = Path(root)
    csv_path = root / "split_csv" / "1cls.csv"
    if not csv_path.is_file():
        raise DatasetLayoutError(
            f"{csv_path} is missing: point the VisA dataset at the folder that holds "
            "split_csv/ and the class folders (the extracted VisA_20220922.tar)"
        )
    table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    expected = {"object", "split", "label", "image", "mask"}
    if not expected <= set(table.columns):
        raise DatasetLayoutError(f"{csv_path} lacks columns {sorted(expected - set(table.columns))}")
    unknown = sorted(set(categories) - set(table["object"]))
    if unknown:
        raise DatasetLayoutError(f"categories {unknown} are not in {csv_path}; fix the dataset's `categories`")
    rows = []
    for record in table[table["object"].isin(categories)].itertuples(index=False):
        label = "good" if record.label == "normal" else "bad"
        image = root / record.image
        if not image.is_file():
            raise DatasetLayoutError(f"{image} (listed in {csv_path}) is missing; re-extract the VisA archive")
        mask = None
        if label != "good":
            if not record.mask:
                raise DatasetLayoutError(f"{csv_path}: anomalous image {record.image} has no mask entry")
            mask = root / record.mask
            if not mask.is_file():
                raise DatasetLayoutError(f"mask {mask} (listed in {csv_path}) is missing; re-extract the VisA archive")
        rows.append(_row(record.object, record.split, label, image, mask))
    return finish_index(pd.DataFrame(rows, columns=INDEX_COLUMNS))
