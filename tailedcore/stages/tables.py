"""Stage functions of rules/tables.smk: the tables of a dataset (CSV, LaTeX, Markdown), the paired
comparisons, the figures of one tail type, the noise-ratio sweep, the diagnostics, cost and ablation tables.

Over 300 lines: one stage function per table rule, each reading the per-run files the same way.

matplotlib is imported inside the functions that draw, so that importing this module stays light."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from ..data.images import Geometry
from ..data.index import read_index
from ..data.longtail import read_manifest
from ..reporting.aggregate import group_means, per_class_table, seed_summary, significant_leads, wide_table
from ..reporting.paper import COMPARISON_COLUMNS, compare_with_paper
from ..reporting.render import (
    METRIC_TITLES,
    emptied_note,
    metric_texts,
    resolution_note,
    resolution_of,
    significance_markdown,
)
from ..runtime.io import atomic_csv, atomic_text, load_npz, read_checked_csv
from ..scores import SCORE_KEYS
from .evaluate import read_metrics


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
    paper_names: dict | None = None,
    protocol: str = "",
) -> list[Path]:
    """Per metric of ``table_metrics``: the wide table (CSV of means; LaTeX mean ± std over split seeds and
    its companion 95 % interval table; Markdown with intervals, both spreads and significant leads), the
    per-run group means and, with ``figure_dir``, the paired-difference figure against ``reference_method``.
    With ``summaries``: the tidy summary, the paired comparisons (``<dataset>_significance``), the extra
    metrics, the per-class table and, with ``compare_with``, the comparison with the paper. ``protocol``: a
    departure from the paper's setting (``paper.coreset_departure``), written into every table's caption."""
    from ..evaluation.stats import paired_comparisons

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
    resolution = resolution_of(metrics)  # where the pixel metrics were computed
    for metric in table_metrics:
        part = summary[summary["metric"] == metric]
        stem = out_dir / f"{dataset}_{metric}"
        atomic_csv(wide_table(part, tails, methods).round(2), f"{stem}.csv", index=True)
        texts = metric_texts(
            part,
            dataset=dataset,
            metric=metric,
            tails=tails,
            methods=methods,
            compare_with=compare_with,
            marks=marks.get(metric),
            note=emptied_note(metrics) + (resolution_note(resolution) if "pixel" in metric else ""),
            resolution=resolution if "pixel" in metric else "",
            protocol=protocol,
        )
        for suffix, text in texts.items():
            atomic_text(f"{stem}{suffix}", text)
        atomic_csv(per_seed[per_seed["metric"] == metric], f"{stem}_per_seed.csv")
        written += [Path(f"{stem}{suffix}") for suffix in (".csv", ".tex", "_ci.tex", ".md", "_per_seed.csv")]
        if figure_dir is not None:
            from ..reporting.figures import paired_difference_figure

            reference = reference_method if reference_method in methods else methods[0]
            title = METRIC_TITLES[metric]
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
    comparison = (
        compare_with_paper(summary, compare_with, paper_names)
        if compare_with
        else pd.DataFrame(columns=COMPARISON_COLUMNS)
    )
    atomic_csv(comparison.round(2), out_dir / f"{dataset}_vs_paper.csv")
    names = ("tidy", "significance", "extra_metrics", "per_class", "vs_paper")
    return written + [out_dir / f"{dataset}_{name}.csv" for name in names]


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
    geometry: Geometry,
    sigma: float,
    out_dir,
) -> list[Path]:
    """For one tail type and seed: per-class image AUROC bars, the TailSampler's estimate (when TailedCore
    runs) and the anomaly maps of a few tail- and head-class test images. ``score_paths``: the runs' files
    (``<method>.npz`` and ``<method>.json``), as the rule's inputs list them."""
    from ..reporting.figures import anomaly_map_figure, per_class_bars, tail_sampler_figure

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
        geometry=geometry,
        sigma=sigma,
        title=f"{dataset}, {tail}, seed {seed}",
        stem=out_dir / f"anomaly_maps_{tail}",
    )
    return written


def read_diagnostics(files: list[str]) -> pd.DataFrame:
    """Every run's diagnostics; a file written before the per-category rows has class-group rows only."""
    from ..evaluation.diagnostics import ALL_CATEGORIES, RUN_COLUMNS

    columns = ["dataset", "tail", "seed", "model_seed", "method", *RUN_COLUMNS]
    needed = [c for c in columns if c != "category"]
    frames = [read_checked_csv(f, "diagnostics", needed, dtype={"category": str}) for f in files]
    frames = [f if "category" in f else f.assign(category=ALL_CATEGORIES)[columns] for f in frames]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def make_diagnostics_tables(
    *,
    diagnostics_files: list[str],
    metric_files: list[str],
    dataset: str,
    tails: list[str],
    methods: list[str],
    outputs: dict,
) -> pd.DataFrame:
    """The diagnostics of every run of a dataset, aggregated over seeds like the AUROC tables. ``outputs``: the
    tidy CSV (``table``) and its Markdown tables (``markdown``), the class-by-class table beside each category's
    image AUROC (``per_category``, ``per_category_md``) and its figure (``per_category_figure_stem``), and the
    motivation figure (``figure_stem``, :func:`tailedcore.reporting.figures.diagnostics_figure`)."""
    from ..evaluation.diagnostics import class_group_rows, diagnostics_summary
    from ..reporting.aggregate import category_diagnostics
    from ..reporting.figures import category_diagnostics_figure, diagnostics_figure
    from ..reporting.render import category_diagnostics_markdown, diagnostics_markdown

    everything = diagnostics_summary(read_diagnostics(diagnostics_files))
    atomic_csv(everything.round(4), outputs["table"])
    summary = class_group_rows(everything)
    atomic_text(outputs["markdown"], diagnostics_markdown(summary, dataset=dataset, tails=tails, methods=methods))
    per_category = category_diagnostics(everything, read_metrics(metric_files))
    atomic_csv(per_category.round(4), outputs["per_category"])
    text = category_diagnostics_markdown(per_category, dataset=dataset, tails=tails, methods=methods)
    atomic_text(outputs["per_category_md"], text)
    title = f"{dataset}: each class's image AUROC against what the memory bank keeps of it (means over runs)"
    category_diagnostics_figure(per_category, tails, methods, title, outputs["per_category_figure_stem"])
    diagnostics_figure(
        summary,
        tails,
        methods,
        f"{dataset}: what the memory bank keeps, relative to the training pool (95 % intervals over split seeds)",
        outputs["figure_stem"],
    )
    return everything


def make_noise_sweep(
    *,
    metric_files: list[str],
    ratios: dict[str, float],
    dataset: str,
    tail: str,
    table_path,
    figure_path,
    diagnostics_files: list[str] = (),
    diagnostics_path=None,
) -> pd.DataFrame:
    """Seed-mean C_t / C_h / all image AUROC of every method at every noise ratio (table + figure); with
    ``diagnostics_files``, the bank enrichment of tail-class clean and of defect patches at every ratio
    (``diagnostics_path`` and a second figure beside the first, ``<figure>_diagnostics``)."""
    from ..reporting.figures import noise_sweep_figure, sweep_diagnostics_figure

    metrics = read_metrics(metric_files)
    metrics = metrics[metrics["metric"] == "image_auroc"]
    summary = seed_summary(group_means(metrics))
    summary.insert(1, "noise_ratio", summary["dataset"].map(ratios))
    summary = summary.sort_values(["method", "noise_ratio", "group"], kind="stable")
    atomic_csv(summary.round(2), table_path)
    noise_sweep_figure(
        summary, f"{dataset}, {tail}: image AUROC against the noise ratio", Path(figure_path).with_suffix("")
    )
    if diagnostics_path is not None:
        from ..evaluation.diagnostics import class_group_rows, diagnostics_summary

        diagnostics = class_group_rows(diagnostics_summary(read_diagnostics(list(diagnostics_files))))
        diagnostics = diagnostics[diagnostics["quantity"] == "enrichment"]
        diagnostics.insert(1, "noise_ratio", diagnostics["dataset"].map(ratios))
        diagnostics = diagnostics.sort_values(["method", "subset", "group", "noise_ratio"], kind="stable")
        atomic_csv(diagnostics.round(4), diagnostics_path)
        stem = Path(figure_path).with_suffix("")
        sweep_diagnostics_figure(
            diagnostics,
            f"{dataset}, {tail}: what the memory bank keeps against the noise ratio",
            stem.with_name(f"{stem.name}_diagnostics"),
        )
    return summary


def make_cost_table(*, report_files: list[str], metric_files: list[str], dataset: str, tails, methods, csv_out, md_out):
    """``<dataset>_cost.{csv,md}``: what every run cost (from the fit reports) beside its image AUROC, aggregated
    over split seeds and model seeds like every other number."""
    from ..reporting.aggregate import cost_runs, cost_summary
    from ..reporting.render import cost_markdown

    reports = {path: json.loads(Path(path).read_text()) for path in report_files}
    summary = cost_summary(cost_runs(reports), group_means(read_metrics(metric_files)))
    atomic_csv(summary.round(6), csv_out)
    atomic_text(md_out, cost_markdown(summary, dataset=dataset, tails=tails, methods=methods))
    return summary


def make_ablation_table(
    *,
    metric_files: list[str],
    diagnostics_files: list[str],
    report_files: list[str],
    dataset: str,
    tails: list[str],
    reference: str,
    methods: list[str],
    labels: dict,
    outputs: dict,
) -> pd.DataFrame:
    """``<dataset>_ablation.{csv,md,tex}`` (``outputs``: csv, md, tex): every variant of ``methods`` against
    ``reference`` (:func:`tailedcore.reporting.ablation.ablation_table`), with its diagnostics and cost."""
    from ..evaluation.diagnostics import class_group_rows, diagnostics_summary
    from ..reporting.ablation import ablation_latex, ablation_markdown, ablation_table
    from ..reporting.aggregate import cost_runs, cost_summary

    metrics = read_metrics(metric_files)
    metrics = metrics[metrics["method"].isin(methods)]
    per_seed = group_means(metrics)
    diagnostics = read_diagnostics(diagnostics_files)
    diagnostics = class_group_rows(diagnostics_summary(diagnostics[diagnostics["method"].isin(methods)]))
    reports = {path: json.loads(Path(path).read_text()) for path in report_files}
    table = ablation_table(
        per_class=per_class_table(metrics),
        summary=seed_summary(per_seed),
        diagnostics=diagnostics,
        cost=cost_summary(cost_runs(reports), per_seed),
        reference=reference,
        methods=methods,
        labels=labels,
    )
    atomic_csv(table.round(4), outputs["csv"])
    atomic_text(outputs["md"], ablation_markdown(table, dataset=dataset, reference=reference, tails=tails))
    atomic_text(outputs["tex"], ablation_latex(table, dataset=dataset, reference=reference, tails=tails))
    return table


def write_runtime_table(stages: dict, output) -> pd.DataFrame:
    """The runtime table (time and peak memory per stage and method) from every benchmark file, written
    atomically."""
    from ..reporting.aggregate import runtime_table

    files = {stage: [paths] if isinstance(paths, str) else list(paths) for stage, paths in stages.items()}
    table = runtime_table(files)
    atomic_csv(table, output)
    logging.getLogger("tailedcore").info("\n%s", table)
    return table
