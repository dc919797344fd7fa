"""The official TailedCore split manifests (jungyg/TailedCore, pinned commit): fetch, verify, convert.

Each (dataset, tail, seed) has ``prune_good.txt`` (original train images to delete) and
``inject_defects.txt`` (``<class>/train/good/<defect>_<file>``: the test image
``<class>/test/<defect>/<file>`` copied into training). We never copy images: the two lists become our
split manifest over the dataset index.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

import pandas as pd

from .download import download, verify
from .longtail import MANIFEST_COLUMNS, add_test_rows

OFFICIAL_REPOSITORY = "jungyg/TailedCore"
OFFICIAL_COMMIT = "7240f04b489fb3d068919e3953cef0ced919a3f8"
# our dataset kind -> (folder name in the official repository, folder name in our cache)
OFFICIAL_DATASETS = {"mvtec": ("mvtecad-nlt", "mvtecad"), "visa": ("visa-nlt", "visa")}
OFFICIAL_TAILS = ("pareto", "step_k1", "step_k4")
OFFICIAL_SEEDS = (1, 2, 3, 4, 5)


class ManifestError(ValueError):
    """An official manifest does not fit the dataset index; the message names the file and the line."""


def checksums() -> dict[str, str]:
    """'<dataset>/<tail>/seedNN/<file>' -> sha256, shipped with the package."""
    text = resources.files("tailedcore.data").joinpath("official_manifests.sha256").read_text()
    return {path: digest for digest, path in (line.split() for line in text.splitlines() if line.strip())}


def relative_path(kind: str, tail: str, seed: int, filename: str) -> str:
    if kind not in OFFICIAL_DATASETS or tail not in OFFICIAL_TAILS or seed not in OFFICIAL_SEEDS:
        raise ValueError(
            f"no official split for dataset kind {kind!r}, tail {tail!r}, seed {seed}: official "
            f"splits exist for {sorted(OFFICIAL_DATASETS)} x {OFFICIAL_TAILS} x seeds 1-5; "
            "use splits.source: generated for anything else"
        )
    return f"{OFFICIAL_DATASETS[kind][1]}/{tail}/seed{seed:02d}/{filename}"


def official_url(kind: str, tail: str, seed: int, filename: str) -> str:
    relative_path(kind, tail, seed, filename)  # validates
    return (
        f"https://raw.githubusercontent.com/{OFFICIAL_REPOSITORY}/{OFFICIAL_COMMIT}/manifest/"
        f"{OFFICIAL_DATASETS[kind][0]}/{tail}/seed{seed:02d}/{filename}"
    )


def fetch_official(
    kind: str,
    tail: str,
    seed: int,
    filename: str,
    target: str | Path,
    local_dir: str | Path | None = None,
    base_url: str | None = None,
) -> Path:
    """Put one official manifest file at ``target``, checked against its pinned sha256.

    From ``local_dir`` (laid out as ``<dataset>/<tail>/seedNN/<file>``) when given, else downloaded from
    the pinned commit (or ``base_url`` + the same relative path, for mirrors).
    """
    relative = relative_path(kind, tail, seed, filename)
    expected = checksums()[relative]
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if local_dir:
        source = Path(local_dir) / relative
        if not source.is_file():
            raise FileNotFoundError(
                f"{source} is missing: splits.official_dir must hold <dataset>/<tail>/seedNN/"
                f"<file> as in {OFFICIAL_REPOSITORY}'s manifest/ folder"
            )
        verify(source, expected)
        shutil.copyfile(source, target)
        return target
    url = f"{base_url.rstrip('/')}/{relative}" if base_url else official_url(kind, tail, seed, filename)
    return download([url], target, expected)


def _read_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    seen, duplicates = set(), set()
    for line in lines:
        (duplicates if line in seen else seen).add(line)
    if duplicates:
        raise ManifestError(f"{path} repeats lines {sorted(duplicates)[:3]}; re-fetch the official manifest")
    return lines


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def convert_official(
    prune_path: str | Path,
    inject_path: str | Path,
    index: pd.DataFrame,
    tail_threshold: int = 20,
    exclude_injected: bool = False,
) -> pd.DataFrame:
    """Our split manifest from the two official lists; class role head <=> clean count >= tail_threshold."""
    prune_path, inject_path = Path(prune_path), Path(inject_path)
    train = index[index["split"] == "train"]
    anomalies = index[(index["split"] == "test") & (index["label"] != "good")]
    train_ids = set(train["image_id"])
    anomaly_ids = set(anomalies["image_id"])
    # longest defect name first, so that e.g. "metal_contamination_000" is not read as "metal" + ...
    labels = {c: sorted(part["label"].unique(), key=len, reverse=True) for c, part in anomalies.groupby("category")}

    pruned = set()
    for line in _read_lines(prune_path):
        category, split, label, name = _parts(line, prune_path)
        image_id = f"{category}/{split}/{label}/{_stem(name)}"
        if image_id not in train_ids:
            raise ManifestError(f"{prune_path}: {line} is not a training image of the dataset index")
        pruned.add(image_id)

    injected = []
    for line in _read_lines(inject_path):
        category, _, _, name = _parts(line, inject_path)
        defect = next((lab for lab in labels.get(category, []) if name.startswith(lab + "_")), None)
        if defect is None:
            raise ManifestError(
                f"{inject_path}: {line} names no test defect type of {category} ({labels.get(category, [])})"
            )
        image_id = f"{category}/test/{defect}/{_stem(name[len(defect) + 1 :])}"
        if image_id not in anomaly_ids:
            raise ManifestError(f"{inject_path}: {line} -> {image_id} is not a test anomaly of {category}")
        injected.append((image_id, category))

    kept = train[~train["image_id"].isin(pruned)]
    clean_counts = kept.groupby("category").size().reindex(sorted(index["category"].unique()), fill_value=0)
    role = {c: "head" if n >= tail_threshold else "tail" for c, n in clean_counts.items()}
    noisy_tails = sorted({c for _, c in injected if role[c] == "tail"})
    if noisy_tails:
        raise ManifestError(
            f"{inject_path} injects into tail classes {noisy_tails}; the protocol puts noise in head classes only"
        )
    rows = [(i, c, "train", "clean", role[c]) for i, c in zip(kept["image_id"], kept["category"])]
    rows += [(i, c, "train", "noise", role[c]) for i, c in sorted(injected)]
    manifest = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    return add_test_rows(manifest, index, exclude_injected)


def _parts(line: str, path: Path) -> tuple[str, str, str, str]:
    parts = line.split("/")
    if len(parts) != 4 or parts[1:3] != ["train", "good"]:
        raise ManifestError(f"{path}: {line!r} is not of the form <class>/train/good/<file>")
    return parts[0], parts[1], parts[2], parts[3]
