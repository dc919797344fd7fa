"""Aggregation of per-class metrics into the paper's table layout (rendering: :mod:`tailedcore.reporting.render`).

Per docs/protocol.md §3.2: for one seed, C_t / C_h / all are unweighted means over tail, head and all classes; the
table reports the mean (and std) of those per-seed means over the seeds. Values are in percent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GROUPS = ("tail", "head", "all")
GROUP_LABELS = {"tail": "$C_t$", "head": "$C_h$", "all": "all"}
TAIL_LABELS = {"pareto": "Pareto", "step_k4": "Step (K=4)", "step_k1": "Step (K=1)"}


def group_means(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per run (dataset, metric, method, tail, split seed, model seed): the means over tail, head and all
    classes (in percent)."""
    if "model_seed" not in metrics:
        metrics = metrics.assign(model_seed=0)
    keys = ["dataset", "metric", "method", "tail", "seed", "model_seed"]
    rows = []
    for key, part in metrics.groupby(keys, sort=True):
        for group in GROUPS:
            chosen = part if group == "all" else part[part["class_role"] == group]
            value = 100.0 * chosen["value"].mean() if len(chosen) else np.nan
            rows.append(dict(zip(keys, key), group=group, value=value, n_classes=len(chosen)))
    return pd.DataFrame(rows)


def seed_summary(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per cell: the mean over every run, the standard deviation over split seeds (``std``, as the paper
    reports it, and ``std_split``) and over model seeds (``std_model``), and the 95 % confidence interval
    (:mod:`tailedcore.evaluation.stats`)."""
    from ..evaluation.stats import cell_statistics

    keys = ["dataset", "metric", "method", "tail", "group"]
    rows = [{**dict(zip(keys, key)), **cell_statistics(part)} for key, part in per_seed.groupby(keys, sort=False)]
    summary = pd.DataFrame(rows)
    summary.insert(summary.columns.get_loc("std_split"), "std", summary["std_split"].fillna(0.0))
    return summary


def wide_table(summary: pd.DataFrame, tails: list[str], methods: list[str], values: str = "mean") -> pd.DataFrame:
    """Rows = methods, columns = '<tail>_<group>' in the given tail order, values = seed means (or ``std``)."""
    table = summary.pivot_table(index="method", columns=["tail", "group"], values=values, sort=False, dropna=False)
    columns = [(t, g) for t in tails for g in GROUPS]  # a group without classes stays, as NaN ("--" in LaTeX)
    table = table.reindex(index=[m for m in methods if m in table.index], columns=pd.MultiIndex.from_tuples(columns))
    table.columns = [f"{t}_{g}" for t, g in columns]
    table.index.name = "method"
    return table


def significant_leads(summary: pd.DataFrame, comparisons: pd.DataFrame, tails: list[str], methods: list[str]):
    """(metric -> bool table like ``wide_table``): true at the best value of a column when its lead over the
    runner-up is significant (Holm-adjusted p < 0.05, paired units)."""
    out = {}
    for metric, part in summary.groupby("metric", sort=False):
        table = wide_table(part, tails, methods)
        marks = pd.DataFrame(False, index=table.index, columns=table.columns)
        for column in table.columns:
            ranked = table[column].dropna().sort_values(ascending=False)
            if len(ranked) < 2 or np.isclose(ranked.iloc[0], ranked.iloc[1]):
                continue
            tail, group = column.rsplit("_", 1)
            best, second = ranked.index[0], ranked.index[1]
            rows = comparisons[
                (comparisons["metric"] == metric)
                & (comparisons["tail"] == tail)
                & (comparisons["group"] == group)
                & (
                    ((comparisons["method_a"] == best) & (comparisons["method_b"] == second))
                    | ((comparisons["method_a"] == second) & (comparisons["method_b"] == best))
                )
            ]
            if len(rows) and bool(rows["significant"].iloc[0]):
                marks.loc[best, column] = True
        out[metric] = marks
    return out


def per_class_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Every run's per-class value in percent: (dataset, metric, method, tail, seed, category, class_role).

    Kept per seed because a class's role (head or tail) changes from seed to seed."""
    if "model_seed" not in metrics:
        metrics = metrics.assign(model_seed=0)
    keys = ["dataset", "metric", "method", "tail", "seed", "model_seed", "category", "class_role"]
    extra = [c for c in ("n_test", "n_masks_emptied", "pixel_resolution") if c in metrics]
    table = metrics[keys + ["value"] + extra].sort_values(keys).reset_index(drop=True)
    table["value"] = 100.0 * table["value"]
    return table.rename(columns={"value": "value_percent"})  # metrics/*.csv hold fractions


def runtime_table(stages: dict[str, list[str]]) -> pd.DataFrame:
    """Time and peak memory per stage (and method) from Snakemake ``benchmark:`` files, given by stage; a run's
    method is its file's name (``<method>.tsv``)."""
    from ..runtime.io import read_checked_csv

    rows = []
    for stage, paths in stages.items():
        for path in paths:
            record = read_checked_csv(path, "benchmark record", ["s", "max_rss"], sep="\t").iloc[-1]
            rows.append(
                {
                    "stage": stage,
                    "method": Path(path).stem if stage in ("fit_score", "evaluate", "diagnose") else "",
                    "seconds": float(record["s"]),
                    "max_rss_mb": float(record["max_rss"]),
                }
            )
    frame = pd.DataFrame(rows, columns=["stage", "method", "seconds", "max_rss_mb"])
    grouped = frame.groupby(["stage", "method"], sort=False)
    return (
        grouped.agg(
            jobs=("seconds", "size"),
            mean_seconds=("seconds", "mean"),
            total_seconds=("seconds", "sum"),
            peak_rss_mb=("max_rss_mb", "max"),
        )
        .round(2)
        .reset_index()
    )


# what each run cost (run_method's report["cost"]), in the units of the cost table
COST_COLUMNS = {
    "fit_seconds": ("fit s", 1.0),
    "coreset_seconds": ("coreset s", 1.0),
    "filter_seconds": ("filter s", 1.0),
    "tail_sampler_seconds": ("TailSampler s", 1.0),
    "reused_seconds": ("reused parts s", 1.0),
    "inference_seconds_per_image": ("inference ms / image", 1e3),
    "inference_throughput_fps": ("images / s", 1.0),
    "memory_bank_rows": ("bank rows", 1.0),
    "model_bytes": ("model MiB", 2.0**-20),
    "peak_rss_bytes": ("peak RSS GiB", 2.0**-30),
    "peak_gpu_bytes": ("peak GPU GiB", 2.0**-30),
}


def cost_runs(reports: dict[str, dict]) -> pd.DataFrame:
    """One row per run and cost quantity (``path -> report``; the split and model seeds from the path
    ``.../<tail>/seed<N>/model<M>/<method>.json``), in the cost table's units; runs without a recorded cost (a
    baseline rule that writes none) are left out."""
    import re

    rows = []
    for path, report in reports.items():
        cost = report.get("cost")
        found = re.search(r"/([^/]+)/seed(\d+)/model(\d+)/([^/]+)\.json$", str(path).replace("\\", "/"))
        if not cost or not found:
            continue
        tail, seed, model_seed, method = found.group(1), int(found.group(2)), int(found.group(3)), found.group(4)
        for key, (name, scale) in COST_COLUMNS.items():
            if key in cost:
                rows.append(
                    dict(
                        method=method,
                        tail=tail,
                        seed=seed,
                        model_seed=model_seed,
                        quantity=name,
                        value=float(cost[key]) * scale,
                        device=cost.get("device", ""),
                    )
                )
    return pd.DataFrame(rows, columns=["method", "tail", "seed", "model_seed", "quantity", "value", "device"])


def cost_summary(runs: pd.DataFrame, per_seed: pd.DataFrame) -> pd.DataFrame:
    """Per (method, tail, quantity): the mean over runs, the spreads and the 95 % interval (bounded below by
    0), like every other number; with each cell's image AUROC over all classes beside it (``per_seed``: the
    group means of the metrics)."""
    from ..evaluation.stats import cell_statistics

    auroc = per_seed[(per_seed["metric"] == "image_auroc") & (per_seed["group"] == "all")]
    auroc = auroc.assign(quantity="image AUROC (all)")[["method", "tail", "seed", "model_seed", "quantity", "value"]]
    both = pd.concat([auroc, runs.drop(columns="device")], ignore_index=True)
    rows = []
    for (method, tail, quantity), part in both.groupby(["method", "tail", "quantity"], sort=False):
        bounds = (0.0, 100.0) if quantity.startswith("image AUROC") else (0.0, float("inf"))
        rows.append(dict(method=method, tail=tail, quantity=quantity, **cell_statistics(part, bounds)))
    summary = pd.DataFrame(rows)
    devices = runs.groupby(["method", "tail"])["device"].agg(lambda d: ",".join(sorted(set(d))))
    return summary.merge(devices.rename("device").reset_index(), on=["method", "tail"], how="left")


# The per-category diagnostics table: (quantity, subset) -> column title, in this order
CATEGORY_COLUMNS = {
    ("pool_share", "clean"): "pool: clean patches (%)",
    ("bank_share", "clean"): "bank: clean rows (%)",
    ("enrichment", "clean"): "clean enrichment",
    ("enrichment", "noise"): "noise enrichment",
    ("enrichment", "defect"): "defect enrichment",
    ("removed", "clean"): "filter removed: clean (%)",
    ("removed", "defect"): "filter removed: defect (%)",
    ("called_tail", "clean"): "called tail: clean (%)",
    ("called_tail", "noise"): "called tail: noise (%)",
    ("class_size_error", "clean"): "class-size error (%)",
    ("test_score", "good"): "test score: good patches",
    ("test_score", "defective"): "test score: defective images' patches",
    ("test_score", "defect"): "test score: defect cells",
    ("match_defect", "good"): "good patches matched to a defect row (%)",
    ("match_defect", "defect"): "defect cells matched to a defect row (%)",
    ("match_same_class", "good"): "good patches matched in class (%)",
}


def category_diagnostics(summary: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per (tail, category, its role, method): the category's image AUROC (%, mean over runs) beside
    the seed means of its diagnostics (CATEGORY_COLUMNS; ``summary`` from
    :func:`tailedcore.evaluation.diagnostics.diagnostics_summary`, ``metrics`` the per-class metric rows)."""
    from ..evaluation.diagnostics import ALL_CATEGORIES

    keys = ["tail", "category", "role", "method"]
    auroc = metrics[metrics["metric"] == "image_auroc"].rename(columns={"class_role": "role"})
    auroc = (100.0 * auroc.groupby(keys, sort=False)["value"].mean()).rename("image AUROC (%)")
    cells = summary[summary["category"] != ALL_CATEGORIES].rename(columns={"group": "role"})
    columns = [auroc.to_frame()]
    for (quantity, subset), title in CATEGORY_COLUMNS.items():
        part = cells[(cells["quantity"] == quantity) & (cells["subset"] == subset)]
        columns.append(part.set_index(keys)["mean"].rename(title).to_frame())
    table = pd.concat(columns, axis=1).reset_index()
    return table.dropna(axis=1, how="all")
