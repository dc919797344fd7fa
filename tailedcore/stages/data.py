"""Stage functions of rules/data.smk: prepared datasets, the per-category index, defect coverage and the
dataset summary. Pure file-in, file-out; each is what one thin workflow script calls."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ..data import dataset_categories
from ..data.coverage import COVERAGE_COLUMNS, coverage_messages, dataset_summary, defect_coverage, summary_markdown
from ..data.images import Geometry
from ..data.index import (
    DatasetLayoutError,
    build_mvtec_index,
    build_visa_index,
    portable_path,
    read_index,
)
from ..data.synthetic import SyntheticSpec, write_dataset
from ..features.settings import FeatureSettings
from ..runtime.io import DamagedFileError, atomic_csv, atomic_text, read_checked_csv, rebuild_hint


def make_synthetic(block: dict, root: str | Path, marker: str | Path) -> None:
    spec = SyntheticSpec(categories=tuple(dataset_categories(block)), **block.get("synthetic", {}))
    summary = write_dataset(root, spec)
    atomic_text(marker, json.dumps({"root": portable_path(root), "synthetic": summary["spec"]}, indent=2))


def make_elpv(block: dict, root: str | Path, marker: str | Path) -> None:
    """The ELPV solar cells of the ``elpv-dataset`` wheel in the MVTec layout (image labels only)."""
    from ..data.elpv import ElpvSpec, write_elpv

    summary = write_elpv(root, ElpvSpec(**block.get("elpv", {})))
    atomic_text(marker, json.dumps({"root": portable_path(root), "elpv": summary}, indent=2))


def mark_given_folder(path: str | Path, marker: str | Path) -> None:
    """Record a dataset folder the user already has; it must exist (its layout is checked by the index)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} (the dataset's `path` in the config) does not exist")
    atomic_text(marker, json.dumps({"root": portable_path(root), "given": True}, indent=2))


def dataset_root(marker: str | Path) -> Path:
    """The dataset folder a ready marker records (relative paths: to the working directory)."""
    try:
        return Path(json.loads(Path(marker).read_text())["root"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DamagedFileError(
            f"{marker} (dataset ready marker) is missing or damaged ({err}); {rebuild_hint(marker)}"
        ) from None


def index_one_category(block: dict, root: Path, category: str, odd_masks: str) -> pd.DataFrame:
    """One category's index rows in the dataset's layout (VisA's CSV or the MVTec folders): the index rule and
    the check read it the same way."""
    if block["kind"] == "visa":
        return build_visa_index(root, [category], odd_masks)
    return build_mvtec_index(root, [category], masks=block.get("masks", "auto"), odd_masks=odd_masks)


def build_category_index(
    block: dict,
    marker: str | Path,
    category: str,
    output: str | Path,
    odd_masks: str = "refuse",
    splits: dict | None = None,
) -> pd.DataFrame:
    """The index rows of one category, every file's header checked (all offenders listed at once). With
    ``splits`` (the config's block, read by the script from the config: a split setting must not reindex), a
    generated split's step K or Pareto minimum that would leave this class at its full size is an error here,
    before any feature is computed."""
    index = index_one_category(block, dataset_root(marker), category, odd_masks)
    if splits is not None and (splits.get("source") == "generated" or block["kind"] not in ("mvtec", "visa")):
        from ..data.index import raise_all
        from ..data.longtail import SplitRules, full_size_tails

        rules = SplitRules(**splits.get("rules", {}))
        raise_all(full_size_tails(index, splits["tails"], rules), "with the configured tails")
    atomic_csv(index, output)
    logging.getLogger("tailedcore").info("%s: %d images", category, len(index))
    return index


def download_archive(block: dict, archive: str | Path) -> None:
    """A dataset's archive from its mirrors (resume, sha256, atomic move)."""
    from ..data.download import download

    download(block.get("urls", []), archive, block.get("sha256"), block.get("size_hint", ""))


def extract_archive(archive: str | Path, root: str | Path, marker: str | Path, sha256: str | None) -> dict:
    """The archive's sha256 verified, then extracted safely; the marker records what was extracted."""
    from ..data.download import extract, verify

    verify(archive, sha256)
    record = extract(archive, root, marker, sha256)
    logging.getLogger("tailedcore").info("extracted %d members to %s", record["members"], record["root"])
    return record


def build_index(category_indexes: list[str], output: str | Path) -> pd.DataFrame:
    """The dataset index: every category's rows. Pixel labels must be all or nothing across categories."""
    index = pd.concat([read_index(path) for path in category_indexes], ignore_index=True)
    problems = mixed_pixel_labels(index)
    if problems:
        raise DatasetLayoutError(problems[0])
    atomic_csv(index, output)
    return index


def mixed_pixel_labels(index: pd.DataFrame) -> list[str]:
    """The problem (at most one) of pixel labels that are not all or nothing across categories."""
    with_masks = index.groupby("category").apply(has_pixel_labels, include_groups=False)
    if not with_masks.any() or with_masks.all():
        return []
    return [
        f"categories {sorted(with_masks[with_masks].index)} have defect masks (ground_truth/) but "
        f"{sorted(with_masks[~with_masks].index)} do not: pixel metrics need masks in every category. Add "
        "the missing ground_truth/ folders, or set the dataset's `masks: false` (image labels only)"
    ]


def has_pixel_labels(index: pd.DataFrame) -> bool:
    defects = index[(index["split"] == "test") & (index["label"] != "good")]
    return bool(len(defects)) and bool((defects["mask_path"] != "").all())


def check_dataset(
    *, block: dict, marker, dataset: str, categories: list[str], splits: dict, output, config: dict | None = None
) -> list[str]:
    """`snakemake check` for one dataset: every category indexed (headers, layout, masks), a broken one never
    hiding the others; pixel labels all or nothing; and every split the configured tails and seeds would
    draw, so that no split job fails for a reason visible here. Writes ``output`` when all is well; else
    writes the list beside it (``<output stem>_problems.md``, which a failed job keeps) and raises one error
    listing every problem."""
    from ..data import count_images
    from ..data.longtail import SplitRules, size_problems

    root = dataset_root(marker)
    problems, parts, sizes, notes = [], [], {}, []
    for category in categories:
        try:
            part = index_one_category(block, root, category, block.get("odd_masks", "refuse"))
            notes += [f"{category}: {note}" for note in part.attrs.get("notes", [])]
            parts.append(part)
            sizes[category] = int((part["split"] == "train").sum())
        except DatasetLayoutError as err:
            lines = str(err).splitlines()
            problems += [f"{category}: {line.strip()}" for line in (lines[1:] or lines)]
            train = root / category / "train" / "good"
            if train.is_dir():  # the split check still sees this class's size
                sizes[category] = count_images(train)
    if parts:
        index = pd.concat(parts, ignore_index=True)
        problems += mixed_pixel_labels(index)
    checked = f"{len(parts)} of {len(categories)} categories indexed"
    generated = splits.get("source") == "generated" or block["kind"] not in ("mvtec", "visa")
    if generated and len(sizes) == len(categories):  # the draws need every class's size
        problems += size_problems(sizes, splits["tails"], splits["seeds"], SplitRules.for_dataset(block, splits))
    elif generated:
        checked += "; the splits are checked once every category has its train/good/ folder"
    listing = Path(output).with_name(Path(output).stem + "_problems.md")
    if problems:
        body = "\n".join(f"- {problem}" for problem in problems)
        atomic_text(listing, f"# Check of {dataset}: {len(problems)} problem(s)\n\n{checked}.\n\n{body}\n")
        raise DatasetLayoutError(
            f"{len(problems)} problem(s) in dataset {dataset} (every category and split checked; the list is "
            f"also in {listing}):\n  " + "\n  ".join(problems)
        )
    listing.unlink(missing_ok=True)
    report = f"# Check of {dataset}: no problem\n\n{checked}; every configured split can be drawn.\n"
    if notes:
        report += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
        for note in notes:
            logging.getLogger("tailedcore").warning(note)
    if config is not None and parts:
        try:
            report += "\n" + planned_time(index, dataset, splits, block, config) + "\n"
        except Exception as err:  # an estimate that cannot be made never fails the check
            logging.getLogger("tailedcore").warning("no time estimate for %s: %s: %s", dataset, type(err).__name__, err)
    atomic_text(output, report)
    return problems


def planned_time(index: pd.DataFrame, dataset: str, splits: dict, block: dict, config: dict) -> str:
    """The estimated time of the dataset's planned features and fits (:mod:`tailedcore.plan.estimate`), shown on
    the terminal; the rates are measured once per machine."""
    from ..data.longtail import SplitRules, generate_split
    from ..plan.estimate import estimate_text, rates
    from ..runtime.logs import to_terminal

    rules = SplitRules.for_dataset(block, splits)
    rows = []
    for tail in splits["tails"]:
        for seed in splits["seeds"]:
            manifest = generate_split(index, tail, seed, rules)
            train = manifest[manifest["subset"] == "train"]
            tail_images, noise = int((train["class_role"] == "tail").sum()), int((train["role"] == "noise").sum())
            rows.append((tail, seed, len(train), tail_images, noise))
    sizes = pd.DataFrame(rows, columns=["tail", "seed", "n_train", "n_tail", "n_noise"])
    features, methods = FeatureSettings.parse(config["features"]), config["methods"]
    measured = rates(
        methods.get("device", "cpu"),
        int(methods.get("threads", 1)),
        features.backbone,
        features.geometry.shape,
        (features.pretrain_dim, features.target_dim),
    )
    counts = (len(index), int((index["split"] == "test").sum()), index["category"].nunique())
    text = estimate_text(dataset=dataset, sizes=sizes, counts=counts, config=config, rates_=measured)
    to_terminal(text)
    return text


def check_coverage(*, index_path, geometry: Geometry, gt_rule: str, output, resolution: str = "model") -> pd.DataFrame:
    """Defect coverage of one category's masks under the geometry, logged as one summary line."""
    coverage = defect_coverage(read_index(index_path), geometry, gt_rule)
    log = logging.getLogger("tailedcore")
    lost = bool((coverage["emptied"] | coverage["source_empty"]).any())
    for line in coverage_messages(coverage, geometry, resolution):
        (log.warning if lost and resolution == "model" else log.info)(line)
    atomic_csv(coverage, output)
    return coverage


def summarise_dataset(
    *,
    index_path,
    coverage_paths: list[str],
    geometry: Geometry,
    dataset: str,
    csv_out,
    md_out,
    resolution: str = "model",
):
    """The dataset summary (counts, sizes, aspect ratios, defect coverage) as CSV and Markdown."""
    index = read_index(index_path)
    parts = [read_checked_csv(path, "defect coverage", COVERAGE_COLUMNS) for path in coverage_paths]
    coverage = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COVERAGE_COLUMNS)
    coverage = coverage.astype({"emptied": bool, "source_empty": bool})
    summary = dataset_summary(index, coverage, geometry)
    lines = coverage_messages(coverage, geometry, resolution)
    if not has_pixel_labels(index):
        lines.append("image labels only (no masks): image AUROC and F1-max are computed, pixel metrics are not")
    atomic_csv(summary, csv_out)
    atomic_text(md_out, summary_markdown(summary, dataset, lines))
    log = logging.getLogger("tailedcore")
    log.info("\n%s", summary.to_string(index=False))
    for line in lines:
        log.info("%s", line)
    return summary, lines
