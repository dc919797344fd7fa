"""One function per workflow stage: what a thin Snakemake script calls. Pure file-in, file-out.

torch, the backbones and matplotlib are imported inside the stages that use them, so that the many
light jobs (index, splits, evaluation, tables) start in about a second.
"""

from __future__ import annotations

import json
import logging
import platform
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .config import FEATURE_RUNTIME_KEYS
from .data import dataset_categories
from .data.coverage import COVERAGE_COLUMNS, coverage_messages, dataset_summary, defect_coverage, summary_markdown
from .data.images import Geometry
from .data.index import DatasetLayoutError, build_mvtec_index, build_visa_index, portable_path, read_index
from .data.synthetic import SyntheticSpec, write_dataset
from .io import DamagedFileError, atomic_csv, atomic_path, atomic_text, load_npz, read_checked_csv, rebuild_hint
from .metrics import EvaluationSpec, evaluate_run
from .official import convert_official
from .paper import COMPARISON_COLUMNS, PAPER_TABLE_NUMBERS, compare_with_paper
from .splits import SplitRules, generate_split, read_manifest, split_statistics
from .tables import group_means, per_class_table, seed_summary, to_latex, to_markdown, wide_table

SCORE_KEYS = ("image_ids", "image_scores", "patch_scores")
METRIC_TITLES = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC"}


def make_synthetic(block: dict, root: str | Path, marker: str | Path) -> None:
    spec = SyntheticSpec(categories=tuple(dataset_categories(block)), **block.get("synthetic", {}))
    summary = write_dataset(root, spec)
    atomic_text(marker, json.dumps({"root": portable_path(root), "synthetic": summary["spec"]}, indent=2))


def make_elpv(block: dict, root: str | Path, marker: str | Path) -> None:
    """The ELPV solar cells of the ``elpv-dataset`` wheel in the MVTec layout (image labels only)."""
    from .data.elpv import ElpvSpec, write_elpv

    summary = write_elpv(root, ElpvSpec(**block.get("elpv", {})))
    atomic_text(marker, json.dumps({"root": portable_path(root), "elpv": summary}, indent=2))


def dataset_root(marker: str | Path) -> Path:
    """The dataset folder a ready marker records (relative paths: to the working directory)."""
    try:
        return Path(json.loads(Path(marker).read_text())["root"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DamagedFileError(
            f"{marker} (dataset ready marker) is missing or damaged ({err}); {rebuild_hint(marker)}"
        ) from None


def build_category_index(block: dict, marker: str | Path, category: str, output: str | Path) -> pd.DataFrame:
    """The index rows of one category, every file's header checked (all offenders listed at once)."""
    root = dataset_root(marker)
    if block["kind"] == "visa":
        index = build_visa_index(root, [category])
    else:
        index = build_mvtec_index(root, [category], masks=block.get("masks", "auto"))
    atomic_csv(index, output)
    return index


def build_index(category_indexes: list[str], output: str | Path) -> pd.DataFrame:
    """The dataset index: every category's rows. Pixel labels must be all or nothing across categories."""
    index = pd.concat([read_index(path) for path in category_indexes], ignore_index=True)
    with_masks = index.groupby("category").apply(has_pixel_labels, include_groups=False)
    if with_masks.any() and not with_masks.all():
        raise DatasetLayoutError(
            f"categories {sorted(with_masks[with_masks].index)} have defect masks (ground_truth/) but "
            f"{sorted(with_masks[~with_masks].index)} do not: pixel metrics need masks in every category. Add "
            "the missing ground_truth/ folders, or set the dataset's `masks: false` (image labels only)"
        )
    atomic_csv(index, output)
    return index


def has_pixel_labels(index: pd.DataFrame) -> bool:
    defects = index[(index["split"] == "test") & (index["label"] != "good")]
    return bool(len(defects)) and bool((defects["mask_path"] != "").all())


def check_coverage(*, index_path, features: dict, evaluation: dict, output) -> pd.DataFrame:
    """Defect coverage of one category's masks under the geometry, logged as one summary line."""
    geometry = Geometry.from_features(features)
    coverage = defect_coverage(read_index(index_path), geometry, evaluation.get("gt_rule", "exact_one"))
    log = logging.getLogger("tailedcore")
    lost = bool((coverage["emptied"] | coverage["source_empty"]).any())
    for line in coverage_messages(coverage, geometry):
        (log.warning if lost else log.info)(line)
    atomic_csv(coverage, output)
    return coverage


def summarise_dataset(*, index_path, coverage_paths: list[str], features: dict, dataset: str, csv_out, md_out):
    """The dataset summary (counts, sizes, aspect ratios, defect coverage) as CSV and Markdown."""
    geometry = Geometry.from_features(features)
    index = read_index(index_path)
    parts = [read_checked_csv(path, "defect coverage", COVERAGE_COLUMNS) for path in coverage_paths]
    coverage = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COVERAGE_COLUMNS)
    coverage = coverage.astype({"emptied": bool, "source_empty": bool})
    summary = dataset_summary(index, coverage, geometry)
    lines = coverage_messages(coverage, geometry)
    if not has_pixel_labels(index):
        lines.append("image labels only (no masks): image AUROC and F1-max are computed, pixel metrics are not")
    atomic_csv(summary, csv_out)
    atomic_text(md_out, summary_markdown(summary, dataset, lines))
    return summary, lines


def make_split(
    *,
    index_path,
    tail: str,
    seed: int,
    noise_ratio: float,
    split_config: dict,
    manifest_path,
    stats_path,
    official: tuple[str, str] | None = None,
) -> pd.DataFrame:
    """Generate a split, or convert the official (prune_good, inject_defects) pair when given."""
    rules = SplitRules(
        noise_ratio=noise_ratio,
        exclude_injected_from_test=split_config["exclude_injected_from_test"],
        **split_config["rules"],
    )
    index = read_index(index_path)
    if official:
        manifest = convert_official(
            official[0], official[1], index, rules.tail_threshold, rules.exclude_injected_from_test
        )
    else:
        manifest = generate_split(index, tail, seed, rules)
    atomic_csv(split_statistics(manifest, index), stats_path)
    atomic_csv(manifest, manifest_path)
    return manifest


def with_runtime(features: dict, config: dict) -> dict:
    """A rule's features params (the number-changing keys) plus the runtime knobs from the config: batch size
    and device only choose how fast, so they are never params and never rerun a job."""
    return {**features, **{key: config["features"][key] for key in FEATURE_RUNTIME_KEYS}}


def feature_config(features: dict):
    """The config's features block without its scheduling keys (threads change no number)."""
    from .features.cache import FeatureConfig

    return FeatureConfig(**{key: value for key, value in features.items() if key != "threads"})


def extract_features(*, index_path, category: str, features: dict, folder, threads: int) -> dict:
    import torch

    from .features.cache import extract_category

    torch.set_num_threads(max(1, threads))
    return extract_category(read_index(index_path), category, feature_config(features), folder, threads=threads)


def _feature_set(store, rows: pd.DataFrame, patches: bool = True):
    """The FeatureSet of manifest ``rows``; without ``patches`` only the global embeddings are read and
    ``patches`` is an empty (n, h, w, 0) array that still gives the patch grid."""
    from .methods.base import FeatureSet

    ids, categories = rows["image_id"].tolist(), rows["category"].tolist()
    if patches:
        patch_features = store.patch_features(ids, categories)
    else:
        grid = next(iter(store.patches.values())).shape[1:3]
        patch_features = np.empty((len(ids), *grid, 0), dtype=np.float16)
    return FeatureSet(ids, patch_features, store.global_features(ids, categories))


def resolve_per_setting(value, dataset: str, tail: str):
    """A method option given per setting: a plain value, or a mapping whose most specific key wins:
    '<dataset>/<tail>' (e.g. 'mvtecad/step_k1'), '<dataset>/<kind>' ('mvtecad/step'), '<dataset>', 'default'."""
    if not isinstance(value, dict):
        return value
    kind = "step" if tail.startswith("step") else tail
    for key in (f"{dataset}/{tail}", f"{dataset}/{kind}", dataset, "default"):
        if key in value:
            return value[key]
    raise ValueError(f"no entry for {dataset}/{tail} in {value}; add a 'default' key")


def _augmenter(image_paths: list[str], features: dict):
    """Tail views computed with the backbone at fit time, for the flagged tail images only."""
    from .features.augment import tail_views
    from .features.cache import FeatureExtractor

    extractor = None

    def augment(rows: list[int], kind: str) -> np.ndarray:
        nonlocal extractor
        config = feature_config(features)
        extractor = extractor or FeatureExtractor(config)
        views = [view for row in rows for view in tail_views(image_paths[row], config.geo, kind, extractor.fill)]
        parts = [
            extractor(np.stack(views[i : i + config.batch_size]))[0] for i in range(0, len(views), config.batch_size)
        ]
        return np.concatenate(parts).astype(config.dtype)  # the cache's precision, like the stored views

    return augment


def mask_padding(scores, geometry: Geometry, sizes: np.ndarray):
    """Pad geometry: the padding is never scored as a defect. Patch cells whose centre lies in the padding get
    the image's lowest content score, and the image score is the maximum over content cells (the image score
    of every package method is the maximum patch score)."""
    from .methods.base import Scores

    patch_scores = np.array(scores.patch_scores, dtype=np.float32, copy=True)
    image_scores = np.empty(len(patch_scores), dtype=np.float32)
    for i, (width, height) in enumerate(sizes):
        cells = geometry.valid_cells(int(width), int(height), patch_scores.shape[1:])
        patch_scores[i][~cells] = patch_scores[i][cells].min()
        image_scores[i] = patch_scores[i][cells].max()
    return Scores(image_scores=image_scores, patch_scores=patch_scores)


def tail_detection(report: dict, train_rows: pd.DataFrame) -> dict:
    """Precision and recall of the predicted tail images against the true tail images (clean images of
    tail classes)."""
    truth = set(train_rows.loc[(train_rows["class_role"] == "tail") & (train_rows["role"] == "clean"), "image_id"])
    predicted = set(report["predicted_tail_images"])
    hits = len(truth & predicted)
    return {
        "tail_true_images": len(truth),
        "tail_predicted_images": len(predicted),
        "tail_precision": hits / len(predicted) if predicted else float("nan"),
        "tail_recall": hits / len(truth) if truth else float("nan"),
    }


def run_method(
    *,
    method: str,
    options: dict,
    seed: int,
    manifest_path,
    index_path,
    feature_folder,
    categories: list[str],
    features: dict,
    setting: tuple[str, str],
    scores_path,
    report_path,
    threads: int,
    device: str = "cpu",
    gpu: str | None = None,
) -> dict:
    """Fit a method on the split's training pool (all categories together) and score every test image.
    ``gpu``: the device index the job holds (:func:`tailedcore.gpu.claim_gpu`), recorded in the report."""
    import torch

    from .compute import set_device, set_threads
    from .features.cache import FeatureStore
    from .methods.base import build_method

    set_threads(threads)
    resolved = set_device(device)
    options = {key: resolve_per_setting(value, *setting) for key, value in options.items()}
    generator = torch.Generator().manual_seed(seed)
    model = build_method(method, options, generator)
    manifest = read_manifest(manifest_path)
    info = read_index(index_path).set_index("image_id")
    geometry = Geometry.from_features(features)
    store = FeatureStore(feature_folder, categories)
    train_rows = manifest[manifest["subset"] == "train"]
    train = _feature_set(store, train_rows)
    train.augment = _augmenter(info.loc[train.image_ids, "image_path"].tolist(), features)
    report = model.fit(train)
    del train
    if "predicted_tail_images" in report:
        report.update(tail_detection(report, train_rows))
    test_rows = manifest[manifest["subset"] == "test"]
    image_ids, image_scores, patch_scores = [], [], []
    for _, part in test_rows.groupby("category", sort=False):  # bounded memory: one category at a time
        scores = model.score(_feature_set(store, part))
        if geometry.mode == "pad":
            scores = mask_padding(scores, geometry, info.loc[part["image_id"], ["width", "height"]].to_numpy())
        image_ids += part["image_id"].tolist()
        image_scores.append(scores.image_scores)
        patch_scores.append(scores.patch_scores)
    report.update(
        {
            "method": method,
            "options": asdict(model.config),
            "model_seed": seed,
            "dataset": setting[0],
            "tail": setting[1],
            "features": features,
            "tailedcore_version": __version__,
            "torch": torch.__version__,
            "device": str(resolved),
            "gpu": gpu,
            "threads": threads,
            "machine": platform.machine(),
        }
    )
    write_scores(
        scores_path,
        report_path,
        image_ids=image_ids,
        image_scores=np.concatenate(image_scores),
        patch_scores=np.concatenate(patch_scores),
        report=report,
    )
    return report


def write_scores(
    scores_path, report_path, *, image_ids: list[str], image_scores: np.ndarray, patch_scores: np.ndarray, report: dict
) -> None:
    """Write a run's score file and its JSON report (docs/architecture.md, "Scores"): one image score and one
    (h, w) patch-score map per test image, float32, in the order of ``image_ids``; higher = more anomalous."""
    image_scores = np.asarray(image_scores, dtype=np.float32).reshape(-1)
    patch_scores = np.asarray(patch_scores, dtype=np.float32)
    if not (len(image_ids) == len(image_scores) == len(patch_scores)) or patch_scores.ndim != 3:
        raise ValueError(
            f"scores for {scores_path}: {len(image_ids)} image ids, {len(image_scores)} image scores and "
            f"patch maps of shape {patch_scores.shape}; need one score and one (h, w) map per image"
        )
    if not (np.isfinite(image_scores).all() and np.isfinite(patch_scores).all()):
        raise ValueError(f"scores for {scores_path} contain NaN or infinite values")
    atomic_text(report_path, json.dumps(report, indent=2, default=str))
    with atomic_path(scores_path) as temporary, open(temporary, "wb") as handle:
        np.savez(handle, image_ids=np.array(image_ids), image_scores=image_scores, patch_scores=patch_scores)


def load_split(manifest_path, feature_folder, categories: list[str], patches: bool = True):
    """The cached features of a split, for a baseline written as a rule: returns (train, test) FeatureSets
    (training pool of every class together, and the test images in manifest order). With ``patches=False``
    only the global embeddings are read, and each set's ``patches`` is an empty (n, h, w, 0) array that
    still gives the patch grid."""
    from .features.cache import FeatureStore

    store = FeatureStore(feature_folder, categories)
    manifest = read_manifest(manifest_path)
    train, test = (_feature_set(store, manifest[manifest["subset"] == subset], patches) for subset in ("train", "test"))
    return train, test


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
    from .metrics import METRIC_COLUMNS

    required = [c for c in METRIC_COLUMNS if c not in ("n_masks_emptied", "empty_masks")]
    return pd.concat([read_checked_csv(f, "metrics", required) for f in metric_files], ignore_index=True)


def make_tables(
    *,
    metric_files: list[str],
    dataset: str,
    tails: list[str],
    methods: list[str],
    out_dir,
    compare_with: str | None = None,
    table_metrics: tuple[str, ...] = ("image_auroc", "pixel_auroc"),
    summaries: bool = True,
    reference_method: str = "tailedcore",
    figure_dir=None,
) -> list[Path]:
    """Per metric of ``table_metrics``: the wide table (CSV of means; LaTeX mean ± std over split seeds and
    its companion 95 % interval table; Markdown with intervals, both spreads and significant leads), the
    per-run group means and, with ``figure_dir``, the paired-difference figure against ``reference_method``.
    With ``summaries``: the tidy summary, the paired comparisons (``<dataset>_significance``), the extra
    metrics, the per-class table and, with ``compare_with``, the comparison with the paper."""
    from .stats import paired_comparisons
    from .tables import significant_leads, to_latex_intervals, to_markdown_text

    metrics = read_metrics(metric_files)
    per_seed = group_means(metrics)
    summary = seed_summary(per_seed)
    per_class = per_class_table(metrics)
    # the pixel table needs only its own metric's comparisons (Holm runs per metric: the same p-values)
    compared = per_class if summaries else per_class[per_class["metric"].isin(table_metrics)]
    comparisons = paired_comparisons(compared)
    marks = significant_leads(summary, comparisons, tails, methods)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in table_metrics:
        part = summary[summary["metric"] == metric]
        table = wide_table(part, tails, methods)
        std = wide_table(part, tails, methods, values="std")
        low = wide_table(part, tails, methods, values="ci_low")
        high = wide_table(part, tails, methods, values="ci_high")
        stem = out_dir / f"{dataset}_{metric}"
        atomic_csv(table.round(2), f"{stem}.csv", index=True)
        n_seeds = int(part["n_seeds"].max()) if len(part) else 0
        n_models = int(part["n_model_seeds"].max()) if len(part) else 0
        runs = f"{n_seeds} split seeds" + (f" x {n_models} model seeds" if n_models > 1 else "")
        number = PAPER_TABLE_NUMBERS.get((compare_with, metric))
        shaped = f" (shaped like Table {number} of the paper)" if number else ""
        title = METRIC_TITLES[metric]
        caption = (
            f"{title} (\\%) on {dataset.replace('_', ' ')}, mean $\\pm$ std over {n_seeds} split seeds"
            f"{shaped}; $C_t$: tail classes, $C_h$: head classes."
        )
        atomic_text(f"{stem}.tex", to_latex(table, caption, f"tab:{dataset}_{metric}", std=std))
        atomic_text(
            f"{stem}_ci.tex",
            to_latex_intervals(
                low,
                high,
                f"95\\% confidence intervals of Table~\\ref{{tab:{dataset}_{metric}}} ({runs}).",
                f"tab:{dataset}_{metric}_ci",
            ),
        )
        spreads = (
            wide_table(part, tails, methods, values="std_split").map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
            + " / "
            + wide_table(part, tails, methods, values="std_model").map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
        )
        intervals = pd.DataFrame(index=low.index, columns=low.columns, dtype=object)
        for column in low.columns:
            intervals[column] = [
                None if pd.isna(a) else f" [{a:.2f}, {b:.2f}]" for a, b in zip(low[column], high[column])
            ]
        atomic_text(
            f"{stem}.md",
            f"{title} (%) on {dataset}: mean over {runs} [95 % confidence interval]{shaped}. Bold: the best "
            "of a column; †: its lead over the runner-up is significant (paired Wilcoxon test on split seed x "
            f"model seed x class, Holm-adjusted p < 0.05; {dataset}_significance.md).\n\n"
            + to_markdown(table, suffix=intervals, marks=marks.get(metric))
            + f"\nStandard deviation over split seeds / over model seeds ({runs}):\n\n"
            + to_markdown_text(spreads)
            + emptied_note(metrics),
        )
        atomic_csv(per_seed[per_seed["metric"] == metric], f"{stem}_per_seed.csv")
        written += [Path(f"{stem}{suffix}") for suffix in (".csv", ".tex", "_ci.tex", ".md", "_per_seed.csv")]
        if figure_dir is not None:
            from .figures import paired_difference_figure

            reference = reference_method if reference_method in methods else methods[0]
            written += paired_difference_figure(
                comparisons[comparisons["metric"] == metric],
                reference=reference,
                tails=tails,
                title=f"{dataset}: {title}, each method minus {reference} (paired, 95 % bootstrap interval)",
                stem=Path(figure_dir) / f"paired_{metric}",
            )
    if not summaries:
        return written
    atomic_csv(summary, out_dir / f"{dataset}_tidy.csv")
    atomic_csv(comparisons, out_dir / f"{dataset}_significance.csv")
    atomic_text(out_dir / f"{dataset}_significance.md", significance_markdown(comparisons, dataset))
    extras = summary[summary["metric"].str.startswith("extra_")]  # beyond the paper: kept apart from Tables 1-4
    atomic_csv(extras.round(2), out_dir / f"{dataset}_extra_metrics.csv")
    atomic_csv(per_class, out_dir / f"{dataset}_per_class.csv")
    comparison = compare_with_paper(summary, compare_with) if compare_with else pd.DataFrame(columns=COMPARISON_COLUMNS)
    atomic_csv(comparison.round(2), out_dir / f"{dataset}_vs_paper.csv")
    names = ("tidy", "significance", "extra_metrics", "per_class", "vs_paper")
    return written + [out_dir / f"{dataset}_{name}.csv" for name in names]


def significance_markdown(comparisons: pd.DataFrame, dataset: str) -> str:
    """The paired comparisons as Markdown: one table per metric."""
    lines = [
        f"# Paired comparisons on {dataset}",
        "",
        "Each row compares two methods on the units both have: (split seed, model seed, class) of the group.",
        "mean_diff = method_a - method_b in AUROC points, with a paired bootstrap 95 % interval; p: two-sided",
        "Wilcoxon signed-rank test; p_adj: Holm-adjusted over every comparison of the metric's table.",
        "",
    ]
    for metric, part in comparisons.groupby("metric", sort=False):
        lines += [
            f"## {metric}",
            "",
            "| tail | group | a | b | n | mean_diff [95 % CI] | p | p_adj |",
            "|" + "---|" * 8,
        ]
        for row in part.itertuples(index=False):
            star = " *" if row.significant else ""
            lines.append(
                f"| {row.tail} | {row.group} | {row.method_a} | {row.method_b} | {row.n_pairs} | "
                f"{row.mean_diff:+.2f} [{row.ci_low:+.2f}, {row.ci_high:+.2f}] | {row.p_value:.3g} | "
                f"{row.p_adjusted:.3g}{star} |"
            )
        lines.append("")
    return "\n".join(lines)


def emptied_note(metrics: pd.DataFrame) -> str:
    """A line naming the categories whose defect masks lost every defect pixel under the geometry."""
    if "n_masks_emptied" not in metrics:
        return ""
    counts = metrics.groupby("category")["n_masks_emptied"].max()
    counts = counts[counts > 0]
    if counts.empty:
        return ""
    mode = metrics["empty_masks"].iloc[0]
    handling = (
        "kept as in the original protocol (in image AUROC; their pixels count as normal)"
        if mode == "keep"
        else "left out of every metric (evaluation.empty_masks: drop)"
    )
    listed = ", ".join(f"{category} {count}" for category, count in counts.items())
    return f"\nDefect images whose mask lost every defect pixel under the geometry, {handling}: {listed}.\n"


def make_figures(
    *,
    dataset: str,
    tail: str,
    seed: int,
    model_seed: int = 0,
    methods: list[str],
    per_class_path,
    index_path,
    manifest_path,
    score_paths: list[str],
    features: dict,
    evaluation: dict,
    out_dir,
) -> list[Path]:
    """For one tail type and seed: per-class image AUROC bars, the TailSampler's estimate (when TailedCore
    runs) and the anomaly maps of a few tail- and head-class test images. ``score_paths``: the runs' files
    (``<method>.npz`` and ``<method>.json``), as the rule's inputs list them."""
    from .figures import anomaly_map_figure, per_class_bars, tail_sampler_figure

    out_dir = Path(out_dir)
    runs = {Path(path).name: Path(path) for path in score_paths}
    per_class = read_checked_csv(per_class_path, "per-class table", ["metric", "tail", "seed", "value_percent"])
    per_class = per_class[per_class["model_seed"] == model_seed]
    index = read_index(index_path).set_index("image_id")
    written = per_class_bars(
        per_class,
        "image_auroc",
        tail=tail,
        seed=seed,
        title=f"{dataset}, {tail}, seed {seed}: image AUROC per class",
        stem=out_dir / f"per_class_{tail}",
    )
    manifest = read_manifest(manifest_path)
    if "tailedcore" in methods:
        report = json.loads(runs["tailedcore.json"].read_text())
        train = manifest[manifest["subset"] == "train"]
        true_sizes = train.groupby("category")["image_id"].transform("count").to_numpy()
        written += tail_sampler_figure(
            report, true_sizes, f"{dataset}, {tail}, seed {seed}: TailSampler", out_dir / f"tail_sampler_{tail}"
        )
    test = manifest[manifest["subset"] == "test"]
    anomalous = test[index.loc[test["image_id"], "label"].to_numpy() != "good"].groupby("category").head(1)
    examples = pd.concat([anomalous[anomalous["class_role"] == role].head(2) for role in ("tail", "head")])
    examples = examples.assign(
        image_path=index.loc[examples["image_id"], "image_path"].to_numpy(),
        mask_path=index.loc[examples["image_id"], "mask_path"].to_numpy(),
    )
    scores = {}
    for method in methods:
        data = load_npz(runs[f"{method}.npz"], "score file", SCORE_KEYS)
        scores[method] = {
            "patch_scores": data["patch_scores"],
            "position": {i: p for p, i in enumerate(data["image_ids"])},
        }
    written += anomaly_map_figure(
        examples,
        scores,
        geometry=Geometry.from_features(features),
        sigma=evaluation["sigma"],
        title=f"{dataset}, {tail}, seed {seed}",
        stem=out_dir / f"anomaly_maps_{tail}",
    )
    return written


def mark_given_folder(path: str | Path, marker: str | Path) -> None:
    """Record a dataset folder the user already has; it must exist (its layout is checked by the index)."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} (the dataset's `path` in the config) does not exist")
    atomic_text(marker, json.dumps({"root": portable_path(root), "given": True}, indent=2))


def make_noise_sweep(
    *, metric_files: list[str], ratios: dict[str, float], dataset: str, tail: str, table_path, figure_path
) -> pd.DataFrame:
    """Seed-mean C_t / C_h / all image AUROC of every method at every noise ratio (table + figure)."""
    from .figures import noise_sweep_figure

    metrics = read_metrics(metric_files)
    metrics = metrics[metrics["metric"] == "image_auroc"]
    summary = seed_summary(group_means(metrics))
    summary.insert(1, "noise_ratio", summary["dataset"].map(ratios))
    summary = summary.sort_values(["method", "noise_ratio", "group"], kind="stable")
    atomic_csv(summary.round(2), table_path)
    noise_sweep_figure(
        summary, f"{dataset}, {tail}: image AUROC against the noise ratio", Path(figure_path).with_suffix("")
    )
    return summary
