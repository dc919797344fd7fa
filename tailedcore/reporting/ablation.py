"""The ablation table (docs/ablation.md): every variant of a method against that method, on the same splits,
seeds and features. Per metric, tail type and class group: each row's mean over split seeds, its paired
difference from the reference over the shared (split seed, model seed, class) units with a 95 % bootstrap
interval, the Wilcoxon signed-rank p-value and Holm's adjustment over the rows, groups and tail types of the
metric; beside it the row's diagnostics (what its memory bank keeps) and its cost (what its runs took)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# (quantity, subset, group) of the class-group diagnostics -> column, in this order
DIAGNOSTIC_COLUMNS = {
    ("enrichment", "noise", "all"): "noise enrichment",
    ("enrichment", "defect", "all"): "defect enrichment",
    ("enrichment", "clean", "tail"): "tail clean enrichment",
    ("removed", "defect", "all"): "filter removed: defect (%)",
    ("tail_recall", "clean", "all"): "tail recall (%)",
    ("noise_called_tail", "noise", "all"): "noise called tail",
}
COST_COLUMNS = ("fit s", "reused parts s", "bank rows", "inference ms / image")
COLUMNS = [
    "metric",
    "tail",
    "group",
    "method",
    "label",
    "mean",
    "std_split",
    "n_pairs",
    "diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
    *DIAGNOSTIC_COLUMNS.values(),
    *COST_COLUMNS,
]


def _paired(per_class: pd.DataFrame, reference: str, method: str) -> np.ndarray:
    """Differences method - reference over their shared (split seed, model seed, class) units."""
    wide = per_class.pivot_table(
        index=["seed", "model_seed", "category"], columns="method", values="value_percent", aggfunc="mean"
    )
    if reference not in wide or method not in wide:
        return np.array([])
    both = wide[[reference, method]].dropna()
    return (both[method] - both[reference]).to_numpy()


def ablation_table(
    *,
    per_class: pd.DataFrame,
    summary: pd.DataFrame,
    diagnostics: pd.DataFrame,
    cost: pd.DataFrame,
    reference: str,
    methods: list[str],
    labels: dict,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """``per_class``: the per-class metric rows (:func:`tailedcore.reporting.aggregate.per_class_table`);
    ``summary``: the seed summary of the group means; ``diagnostics``: the class-group diagnostics summary;
    ``cost``: the cost summary. ``methods``: the rows, the reference first."""
    from ..evaluation.stats import holm, paired_bootstrap_interval, wilcoxon_p

    rows = []
    for (metric, tail), part in per_class.groupby(["metric", "tail"], sort=False):
        if metric.startswith("extra_"):
            continue
        for group in ("tail", "head", "all"):
            chosen = part if group == "all" else part[part["class_role"] == group]
            cells = summary[(summary["metric"] == metric) & (summary["tail"] == tail) & (summary["group"] == group)]
            for method in methods:
                cell = cells[cells["method"] == method]
                if cell.empty:
                    continue
                row = dict(metric=metric, tail=tail, group=group, method=method, label=labels.get(method, method))
                row.update(mean=float(cell["mean"].iloc[0]), std_split=float(cell["std_split"].iloc[0]))
                differences = _paired(chosen, reference, method) if method != reference else np.array([])
                low, high = paired_bootstrap_interval(differences)
                row.update(
                    n_pairs=len(differences),
                    diff=float(differences.mean()) if len(differences) else np.nan,
                    ci_low=low,
                    ci_high=high,
                    p_value=wilcoxon_p(differences) if len(differences) else np.nan,
                )
                rows.append(row)
    table = pd.DataFrame(rows, columns=COLUMNS[:13])
    table["p_adjusted"] = np.nan
    for _, part in table.groupby("metric", sort=False):
        table.loc[part.index, "p_adjusted"] = holm(part["p_value"].to_numpy())
    table["significant"] = table["p_adjusted"] < alpha
    for (quantity, subset, group), title in DIAGNOSTIC_COLUMNS.items():
        found = diagnostics[
            (diagnostics["quantity"] == quantity) & (diagnostics["subset"] == subset) & (diagnostics["group"] == group)
        ]
        table = table.merge(
            found.set_index(["tail", "method"])["mean"].rename(title), on=["tail", "method"], how="left"
        )
    for quantity in COST_COLUMNS:
        if "quantity" not in cost or not (cost["quantity"] == quantity).any():
            table[quantity] = np.nan  # a cost the runs did not record
            continue
        found = cost[cost["quantity"] == quantity].set_index(["tail", "method"])["mean"].rename(quantity)
        table = table.merge(found, on=["tail", "method"], how="left")
    return table[COLUMNS]


def _cell(row) -> str:
    if pd.isna(row["diff"]):
        return f"{row['mean']:.1f}"
    mark = "*" if row["significant"] else ""
    return f"{row['mean']:.1f} ({row['diff']:+.1f} [{row['ci_low']:+.1f}, {row['ci_high']:+.1f}]{mark})"


def ablation_markdown(table: pd.DataFrame, *, dataset: str, reference: str, tails: list[str]) -> str:
    """Per metric and tail type: a row per variant, its mean in the tail, head and all classes with its
    paired difference from the reference, then its diagnostics and cost."""
    lines = [
        f"# Ablation on {dataset}: each row against {reference}\n",
        "Each cell: the mean over split seeds (%), then the paired difference from the reference over the shared "
        "(split seed, model seed, class) units with its 95 % bootstrap interval; * = significant after Holm's "
        "adjustment over the rows, class groups and tail types of the metric (Wilcoxon signed-rank, 0.05). "
        "Diagnostics: what the memory bank keeps (1 = as a uniform draw would); cost: means over runs, fit "
        "seconds without the parts read back from another fit (reused parts s).\n",
    ]
    extra = [c for c in (*DIAGNOSTIC_COLUMNS.values(), *COST_COLUMNS) if table[c].notna().any()]
    for metric in dict.fromkeys(table["metric"]):
        for tail in tails:
            part = table[(table["metric"] == metric) & (table["tail"] == tail)]
            if part.empty:
                continue
            lines += [
                f"\n## {metric}, {tail}\n",
                "| row | tail classes | head classes | all classes | " + " | ".join(extra) + " |",
            ]
            lines.append("|---" * (4 + len(extra)) + "|")
            for method in dict.fromkeys(part["method"]):
                rows = part[part["method"] == method].set_index("group")
                cells = [_cell(rows.loc[g]) if g in rows.index else "–" for g in ("tail", "head", "all")]
                first = rows.iloc[0]
                values = ["–" if pd.isna(first[c]) else f"{first[c]:.3g}" for c in extra]
                lines.append(f"| {first['label']} | " + " | ".join(cells + values) + " |")
    return "\n".join(lines) + "\n"


def _tex(text: str) -> str:
    return str(text).replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")


def ablation_latex(table: pd.DataFrame, *, dataset: str, reference: str, tails: list[str]) -> str:
    """The image (and pixel) AUROC of every row, as the paper's ablation: per tail type the tail-class, head-class
    and all-class means, and the paired difference of all classes from the reference (significant in bold)."""
    out = []
    for metric in dict.fromkeys(table["metric"]):
        part = table[table["metric"] == metric]
        shown = [t for t in tails if t in set(part["tail"])]
        out += [
            f"% {dataset}: {metric}, each row against {_tex(reference)} (mean over split seeds; "
            "Delta: paired difference over all classes, bold = significant after Holm)",
            r"\begin{tabular}{l" + "rrrr" * len(shown) + "}",
            r"\toprule",
            " & " + " & ".join(rf"\multicolumn{{4}}{{c}}{{{_tex(t)}}}" for t in shown) + r" \\",
            "row & " + " & ".join(["$C_t$ & $C_h$ & all & $\\Delta$"] * len(shown)) + r" \\",
            r"\midrule",
        ]
        for method in dict.fromkeys(part["method"]):
            rows = part[part["method"] == method]
            cells = []
            for tail in shown:
                by_group = rows[rows["tail"] == tail].set_index("group")
                cells += [
                    f"{by_group.loc[g, 'mean']:.1f}" if g in by_group.index else "--" for g in ("tail", "head", "all")
                ]
                every = by_group.loc["all"] if "all" in by_group.index else None
                if every is None or pd.isna(every["diff"]):
                    cells.append("--")
                else:
                    text = f"{every['diff']:+.1f}"
                    cells.append(rf"\textbf{{{text}}}" if every["significant"] else text)
            out.append(_tex(rows["label"].iloc[0]) + " & " + " & ".join(cells) + r" \\")
        out += [r"\bottomrule", r"\end{tabular}", ""]
    return "\n".join(out)
