"""Dataset index: one row per image, the only view of a dataset that later stages use.

Columns: ``image_id, category, split (train|test), label (good|<defect type>), image_path, mask_path, width,
height``. ``width`` / ``height`` are the image's size after its EXIF orientation (read from the header, no
decoding). Paths inside the working directory are stored relative to it, so a results tree can be moved;
others stay absolute. ``image_id`` is ``<category>/<split>/<label>/<file stem>`` and unique.

Building an index checks every file's header and lists every offender at once: missing masks, unreadable
images or masks, masks whose size differs from their image's.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd

INDEX_COLUMNS = ["image_id", "category", "split", "label", "image_path", "mask_path", "width", "height"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MAX_LISTED = 40


class DatasetLayoutError(ValueError):
    """The dataset on disk does not have the expected layout; the message names the path and the fix."""


def raise_all(problems: list[str], what: str) -> None:
    """One error listing every problem (the first ``MAX_LISTED``, then how many more)."""
    if not problems:
        return
    lines = problems[:MAX_LISTED]
    more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
    raise DatasetLayoutError(f"{len(problems)} problem(s) {what}:\n  " + "\n  ".join(lines) + more)


def portable_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies inside it, else absolute."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _find_mask(folder: Path, stem: str, listing: dict[Path, dict[str, Path]]) -> Path | None:
    """``<stem>_mask.<ext>`` or ``<stem>.<ext>`` in ``folder``, any image extension, any case."""
    if folder not in listing:
        listing[folder] = {p.name.lower(): p for p in _images_in(folder)} if folder.is_dir() else {}
    names = listing[folder]
    for base in (f"{stem}_mask", stem):
        for suffix in (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg"):
            if f"{base}{suffix}".lower() in names:
                return names[f"{base}{suffix}".lower()]
    return None


def category_has_masks(root: str | Path, category: str) -> bool:
    return (Path(root) / category / "ground_truth").is_dir()


def build_mvtec_index(
    root: str | Path, categories: list[str] | tuple[str, ...], masks: bool | str = "auto", odd_masks: str = "refuse"
) -> pd.DataFrame:
    """Index an MVTec-AD-layout folder: ``<category>/{train/good, test/<label>, ground_truth/<label>}``.

    ``masks``: True = every defect image needs ``ground_truth/<label>/<stem>_mask.<ext>`` (or
    ``<stem>.<ext>``); False = image labels only (masks ignored); ``auto`` = True when the category has a
    ``ground_truth/`` folder. Every problem of every category is listed in one error.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetLayoutError(f"dataset folder {root} does not exist; check the dataset's `path` in the config")
    present = sorted(p.name for p in root.iterdir() if p.is_dir())
    missing = [c for c in categories if c not in present]
    if missing:
        raise DatasetLayoutError(
            f"categories {missing} are not folders of {root} (found: {present}); fix the dataset's "
            "`categories` list in the config or the dataset folder"
        )
    rows, problems, listing = [], [], {}
    for category in categories:
        cat_dir = root / category
        train_dir, test_dir = cat_dir / "train" / "good", cat_dir / "test"
        absent = [str(p) for p in (train_dir, test_dir) if not p.is_dir()]
        if absent:
            problems += [
                f"{p} is missing: an MVTec-layout category needs train/good/ and test/<label>/ (and "
                "ground_truth/<label>/<name>_mask.png for every defect image, unless the dataset has image "
                "labels only)"
                for p in absent
            ]
        if not test_dir.is_dir():
            continue
        # a missing train/good/ hides nothing else: the test images and masks are still checked
        train_images = _images_in(train_dir) if train_dir.is_dir() else []
        if train_dir.is_dir() and not train_images:
            problems.append(f"{train_dir} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}, any case)")
        rows += [_row(category, "train", "good", p, None) for p in train_images]
        labels = sorted(p.name for p in test_dir.iterdir() if p.is_dir())
        if "good" not in labels:
            problems.append(f"{test_dir / 'good'} is missing: the test split needs normal images")
        with_masks = category_has_masks(root, category) if masks == "auto" else bool(masks)
        for label in labels:
            for image in _images_in(test_dir / label):
                mask = None
                if label != "good" and with_masks:
                    mask = _find_mask(cat_dir / "ground_truth" / label, image.stem, listing)
                    if mask is None:
                        problems.append(
                            f"mask for defect image {image} is missing: add "
                            f"{cat_dir / 'ground_truth' / label / (image.stem + '_mask.png')} (non-zero = defect), "
                            "remove the image, or set the dataset's `masks: false` (image labels only)"
                        )
                rows.append(_row(category, "test", label, image, mask))
    where = f"in the dataset folder {root}"
    return finish_index(pd.DataFrame(rows, columns=INDEX_COLUMNS[:6]), problems, where, odd_masks)


def _row(category: str, split: str, label: str, image: Path, mask: Path | None) -> dict:
    return {
        "image_id": f"{category}/{split}/{label}/{image.stem}",
        "category": category,
        "split": split,
        "label": label,
        "image_path": portable_path(image),
        "mask_path": portable_path(mask) if mask is not None else "",
    }


def _each(read, paths: list[str]) -> list:
    """``read(path)`` of every file in a thread pool, or the error text of a file it fails on."""

    def one(path):
        try:
            return read(path)
        except Exception as err:  # noqa: BLE001 - every unreadable file is reported, whatever the reason
            return f"{type(err).__name__}: {err}"

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
        return list(pool.map(one, paths, chunksize=64))


def _headers(paths: list[str]) -> list[tuple | str]:
    """Header of every file: (width, height, mode), or the error text of an unreadable one."""
    from .images import header

    return _each(header, paths)


def mask_problem(mask: str, info: dict, instance_ids: bool = False) -> str | None:
    """Why a mask is not a clean two-valued one (None when it is): a lossy format, or pixel values other than
    0 and its largest (``instance_ids``: VisA's lossless masks number their defects, so only a lossy format
    counts there)."""
    if not info["lossy"] and (instance_ids or not info["ambiguous"]):
        return None
    what = f"a {info['format']} mask (lossy compression)" if info["lossy"] else "the mask is not two-valued"
    return (
        f"{mask}: {what}: {info['ambiguous']:,} of its {info['defect']:,} pixels above 0 are ambiguous (neither 0 "
        "nor its largest value)"
    )


def finish_index(
    index: pd.DataFrame,
    problems: list[str] | None = None,
    where: str = "in the dataset",
    odd_masks: str = "refuse",
    instance_ids: bool = False,
) -> pd.DataFrame:
    """Read every image's and mask's header, add the sizes, check the invariants every stage relies on and
    sort by (category, split, label, image_id). ``problems`` found earlier (layout) are listed with the
    header problems, every offender in one error. Every image's body is checked for truncation
    (:func:`~tailedcore.data.images.body_problem`) and every mask decoded: a lossy or not two-valued one is a
    problem under ``odd_masks: refuse``, a note (``index.attrs["notes"]``) under ``binarize`` (> 0 = defect)."""
    from .images import body_problem, mask_values

    problems = list(problems or [])
    dup = index["image_id"][index["image_id"].duplicated()]
    if len(dup):
        problems += [f"two files share the image id {i} (same stem in one folder, e.g. a.png and a.jpg)" for i in dup]
    for category, part in index.groupby("category"):
        test = part[part["split"] == "test"]
        if not (test["label"] != "good").any():
            problems.append(f"category {category} has no anomalous test image; AUROC is undefined")
    image_headers = _headers(index["image_path"].tolist())
    bodies = _each(body_problem, index["image_path"].tolist())
    has_mask = index["mask_path"] != ""
    mask_headers = dict(zip(index.index[has_mask], _headers(index.loc[has_mask, "mask_path"].tolist()), strict=True))
    mask_infos = dict(zip(index.index[has_mask], _each(mask_values, index.loc[has_mask, "mask_path"].tolist())))
    odd, notes = [], []
    widths, heights = [], []
    for row, image, image_header, body in zip(index.index, index["image_path"], image_headers, bodies, strict=True):
        if isinstance(image_header, str) or body is not None:
            problems.append(
                f"{image}: unreadable image ({body if isinstance(image_header, tuple) else image_header})"
                "; replace or delete it"
            )
            widths.append(0)
            heights.append(0)
            continue
        widths.append(image_header[0])
        heights.append(image_header[1])
        if row in mask_headers:
            mask, mask_header = index.at[row, "mask_path"], mask_headers[row]
            if isinstance(mask_header, str):
                problems.append(f"{mask}: unreadable mask ({mask_header}); replace or delete it")
            elif mask_header[:2] != image_header[:2]:
                problems.append(
                    f"{mask}: mask is {mask_header[0]}x{mask_header[1]} but its image {image} is "
                    f"{image_header[0]}x{image_header[1]} (width x height); a mask must have its image's size"
                )
            elif isinstance(mask_infos[row], str):
                problems.append(f"{mask}: unreadable mask ({mask_infos[row]}); replace or delete it")
            elif (why := mask_problem(mask, mask_infos[row], instance_ids)) is not None:
                odd.append((why, mask_infos[row]["ambiguous"]))
    if odd and odd_masks == "refuse":
        problems += [
            f"{why}; save the masks as PNG with two values, or set the dataset's `odd_masks: binarize` to take "
            "every pixel above 0 as defect"
            for why, _ in odd
        ]
    elif odd:
        notes.append(
            f"{len(odd)} mask(s) lossy or not two-valued ({sum(n for _, n in odd):,} ambiguous pixels) binarised at "
            f"> 0 as the dataset's `odd_masks: binarize` says, e.g. {odd[0][0]}"
        )
    raise_all(problems, where)
    index = index.assign(width=widths, height=heights)
    index.attrs["notes"] = notes
    return index.sort_values(["category", "split", "label", "image_id"], kind="stable").reset_index(drop=True)


def read_index(path: str | Path) -> pd.DataFrame:
    from ..runtime.io import DamagedFileError, read_checked_csv, rebuild_hint

    index = read_checked_csv(path, "dataset index", INDEX_COLUMNS, dtype=str, keep_default_na=False)[INDEX_COLUMNS]
    try:
        return index.astype({"width": int, "height": int})
    except ValueError as err:
        raise DamagedFileError(
            f"{path} (dataset index) has a damaged size column ({err}); {rebuild_hint(path)}"
        ) from err


def build_visa_index(
    root: str | Path, categories: list[str] | tuple[str, ...], odd_masks: str = "refuse"
) -> pd.DataFrame:
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
    rows, problems = [], []
    for record in table[table["object"].isin(categories)].itertuples(index=False):
        label = "good" if record.label == "normal" else "bad"
        image = root / record.image
        if not image.is_file():
            problems.append(f"{image} (listed in {csv_path}) is missing; re-extract the VisA archive")
            continue
        mask = None
        if label != "good":
            if not record.mask:
                problems.append(f"{csv_path}: anomalous image {record.image} has no mask entry")
                continue
            mask = root / record.mask
            if not mask.is_file():
                problems.append(f"mask {mask} (listed in {csv_path}) is missing; re-extract the VisA archive")
                continue
        rows.append(_row(record.object, record.split, label, image, mask))
    where = f"in the VisA folder {root}"  # its lossless masks number their defects: only a lossy one is odd
    return finish_index(pd.DataFrame(rows, columns=INDEX_COLUMNS[:6]), problems, where, odd_masks, instance_ids=True)
