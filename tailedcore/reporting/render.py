"""Rendering of the tables: LaTeX (booktabs) and GitHub Markdown, captions and the notes under them.

Over 300 lines: one renderer per table (metric tables, significance, diagnostics, cost), sharing the cell formats
and notes; split up, the tables' formats could drift apart.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .aggregate import GROUP_LABELS, GROUPS, TAIL_LABELS, wide_table
from .paper import PAPER_TABLE_NUMBERS

METRIC_TITLES = {"image_auroc": "image AUROC", "pixel_auroc": "pixel AUROC"}


def _formatted_rows(
    table: pd.DataFrame,
    decimals: int,
    best_format: str,
    missing: str,
    *,
    std: pd.DataFrame | None = None,
    suffix: pd.DataFrame | None = None,
    marks: pd.DataFrame | None = None,
):
    """(method, cell texts) per row: NaN as ``missing``, ``± std`` when given, then ``suffix`` (text), the
    column's best in ``best_format``, and a dagger where ``marks`` is true."""
    best = table.max(axis=0)
    for method, row in table.iterrows():
        cells = []
        for column in table.columns:
            value = row[column]
            if pd.isna(value):
                cells.append(missing)
                continue
            text = f"{value:.{decimals}f}"
            if std is not None and not pd.isna(std.loc[method, column]):
                text += f" ± {std.loc[method, column]:.{decimals}f}"
            if suffix is not None and isinstance(suffix.loc[method, column], str):
                text += suffix.loc[method, column]
            text = best_format % text if np.isclose(value, best[column]) else text
            if marks is not None and bool(marks.loc[method, column]):
                text += " †"
            cells.append(text)
        yield method, cells


def _latex_frame(rows, tails: list[str], caption: str, label: str) -> str:
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption}}}",
        rf"\label{{{label}}}",
        r"\begin{tabular}{l" + "ccc" * len(tails) + "}",
        r"\toprule",
    ]
    lines.append(
        "Method & " + " & ".join(rf"\multicolumn{{3}}{{c}}{{{TAIL_LABELS.get(t, t)}}}" for t in tails) + r" \\"
    )
    lines.append("".join(rf"\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(len(tails))))
    lines.append(" & " + " & ".join(GROUP_LABELS[g] for _ in tails for g in GROUPS) + r" \\")
    lines.append(r"\midrule")
    for method, cells in rows:
        name = str(method).replace("_", r"\_")
        lines.append(f"{name} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _tails_of(table: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(c.rsplit("_", 1)[0] for c in table.columns))


def to_latex(table: pd.DataFrame, caption: str, label: str, decimals: int = 2, std: pd.DataFrame | None = None) -> str:
    """booktabs table with one column group per tail type (mean, ± std when given); the best in bold."""
    rows = _formatted_rows(table, decimals, r"\textbf{%s}", "--", std=std)
    return _latex_frame(rows, _tails_of(table), caption, label)


def to_latex_intervals(low: pd.DataFrame, high: pd.DataFrame, caption: str, label: str, decimals: int = 2) -> str:
    """The companion table: the 95 % confidence interval [low, high] of every cell."""
    rows = []
    for method in low.index:
        cells = [
            "--"
            if pd.isna(low.loc[method, c])
            else f"[{low.loc[method, c]:.{decimals}f}, {high.loc[method, c]:.{decimals}f}]"
            for c in low.columns
        ]
        rows.append((method, cells))
    return _latex_frame(rows, _tails_of(low), caption, label)


def _markdown_header(table: pd.DataFrame) -> list[str]:
    header = ["method"] + [
        f"{TAIL_LABELS.get(c.rsplit('_', 1)[0], c.rsplit('_', 1)[0])} "
        f"{GROUP_LABELS[c.rsplit('_', 1)[1]].strip('$').replace('_', '')}"
        for c in table.columns
    ]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]


def to_markdown(
    table: pd.DataFrame,
    std: pd.DataFrame | None = None,
    decimals: int = 2,
    suffix: pd.DataFrame | None = None,
    marks: pd.DataFrame | None = None,
) -> str:
    """A GitHub table: the mean (± std when given, then ``suffix``), the best of each column in bold, a
    dagger where ``marks`` is true."""
    lines = _markdown_header(table)
    for method, cells in _formatted_rows(table, decimals, "**%s**", "–", std=std, suffix=suffix, marks=marks):
        lines.append("| " + " | ".join([str(method), *cells]) + " |")
    return "\n".join(lines) + "\n"


def to_markdown_text(texts: pd.DataFrame) -> str:
    """A GitHub table of ready-made cell texts (NaN as a dash)."""
    lines = _markdown_header(texts)
    for method, row in texts.iterrows():
        lines.append("| " + " | ".join([str(method), *("–" if pd.isna(v) else str(v) for v in row)]) + " |")
    return "\n".join(lines) + "\n"


def metric_texts(
    part: pd.DataFrame,
    *,
    dataset: str,
    metric: str,
    tails,
    methods,
    compare_with,
    marks,
    note: str,
    resolution="",
    protocol: str = "",
):
    """The texts of one metric's table from its rows of the seed summary: ``{suffix: text}`` for ``.tex``
    (mean ± std over split seeds), ``_ci.tex`` (95 % intervals) and ``.md`` (means, intervals, significant
    leads, both spreads and ``note``). ``protocol``: a departure from the paper's setting, in every caption."""
    table = wide_table(part, tails, methods)
    std = wide_table(part, tails, methods, values="std")
    low = wide_table(part, tails, methods, values="ci_low")
    high = wide_table(part, tails, methods, values="ci_high")
    n_seeds = int(part["n_seeds"].max()) if len(part) else 0
    n_models = int(part["n_model_seeds"].max()) if len(part) else 0
    runs = f"{n_seeds} split seeds" + (f" x {n_models} model seeds" if n_models > 1 else "")
    number = PAPER_TABLE_NUMBERS.get((compare_with, metric))
    shaped = f" (shaped like Table {number} of the paper)" if number else ""
    title = METRIC_TITLES[metric]
    caption = (
        f"{title} (\\%) on {dataset.replace('_', ' ')}, mean $\\pm$ std over {n_seeds} split seeds"
        f"{shaped}; $C_t$: tail classes, $C_h$: head classes."
        + (" Pixels at each mask's native resolution." if resolution == "native" else "")
        + (f" {protocol.replace('%', chr(92) + '%')}" if protocol else "")
    )
    spreads = (
        wide_table(part, tails, methods, values="std_split").map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
        + " / "
        + wide_table(part, tails, methods, values="std_model").map(lambda v: "–" if pd.isna(v) else f"{v:.2f}")
    )
    intervals = pd.DataFrame(index=low.index, columns=low.columns, dtype=object)
    for column in low.columns:
        intervals[column] = [None if pd.isna(a) else f" [{a:.2f}, {b:.2f}]" for a, b in zip(low[column], high[column])]
    return {
        ".tex": to_latex(table, caption, f"tab:{dataset}_{metric}", std=std),
        "_ci.tex": to_latex_intervals(
            low,
            high,
            f"95\\% confidence intervals of Table~\\ref{{tab:{dataset}_{metric}}} ({runs})."
            + (f" {protocol.replace('%', chr(92) + '%')}" if protocol else ""),
            f"tab:{dataset}_{metric}_ci",
        ),
        ".md": (f"**{protocol}**\n\n" if protocol else "")
        + f"{title} (%) on {dataset}: mean over {runs} [95 % confidence interval]{shaped}. Bold: the best "
        "of a column; †: its lead over the runner-up is significant (paired Wilcoxon test on split seed x "
        f"model seed x class, Holm-adjusted p < 0.05; {dataset}_significance.md).\n\n"
        + to_markdown(table, suffix=intervals, marks=marks)
        + f"\nStandard deviation over split seeds / over model seeds ({runs}):\n\n"
        + to_markdown_text(spreads)
        + note,
    }


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


def resolution_of(metrics: pd.DataFrame) -> str:
    """Where a run set's pixel metrics were computed: 'model', 'native', 'mixed' or '' (no pixel labels)."""
    if "pixel_resolution" not in metrics:
        return ""
    modes = set(metrics["pixel_resolution"].dropna().astype(str)) - {""}
    return modes.pop() if len(modes) == 1 else ("mixed" if modes else "")


RESOLUTION_NOTES = {
    "native": "Pixel metrics at native resolution (evaluation.resolution: native): each anomaly map taken back "
    "through the inverse geometry onto its mask's own pixels; no mask is emptied.",
    "model": "Pixel metrics on the model's grid (evaluation.resolution: model, the paper's protocol).",
    "mixed": "Pixel metrics of these runs come from different evaluation.resolution settings: rerun the evaluation.",
}


def resolution_note(mode: str) -> str:
    """A line saying where the pixel metrics were computed: ``mode`` from :func:`resolution_of`."""
    return f"\n{RESOLUTION_NOTES[mode]}\n" if mode else ""


def diagnostics_markdown(summary: pd.DataFrame, *, dataset: str, tails: list[str], methods: list[str]) -> str:
    """The diagnostics summary (:func:`tailedcore.evaluation.diagnostics.diagnostics_summary`) as Markdown: one table
    per quantity and patch set, rows = methods, columns = tail type x (C_t, C_h, all), cells = mean [95 % CI]."""
    from ..evaluation.diagnostics import QUANTITY_TITLES, SUBSETS

    runs = ""
    if len(summary):
        n_seeds, n_models = int(summary["n_seeds"].max()), int(summary["n_model_seeds"].max())
        runs = f"{n_seeds} split seeds" + (f" x {n_models} model seeds" if n_models > 1 else "")
    lines = [
        f"# Diagnostics on {dataset}: the tail-versus-noise trade-off",
        "",
        f"Mean over {runs or 'no runs'} [95 % confidence interval]. Patch sets: clean (patches of clean images), "
        "noise (every patch of an injected defective image), defect (cells of a noise image with at least one "
        "defect pixel: the headline), defect_half (cells at least half defect). C_t / C_h: tail / head classes. "
        "A method without a memory bank (PaDiM) or without a provenance file has no rows.",
        "",
    ]
    for quantity, title in QUANTITY_TITLES.items():
        part = summary[summary["quantity"] == quantity]
        for subset in SUBSETS:
            chosen = part[part["subset"] == subset]
            if chosen.empty:
                continue
            decimals = 0 if quantity == "noise_called_tail" else 2
            table = wide_table(chosen, tails, methods)
            low = wide_table(chosen, tails, methods, values="ci_low")
            high = wide_table(chosen, tails, methods, values="ci_high")
            texts = pd.DataFrame(index=table.index, columns=table.columns, dtype=object)
            for column in table.columns:
                texts[column] = [
                    None
                    if pd.isna(mean)
                    else f"{mean:.{decimals}f}" + ("" if pd.isna(a) else f" [{a:.{decimals}f}, {b:.{decimals}f}]")
                    for mean, a, b in zip(table[column], low[column], high[column])
                ]
            lines += [f"## {quantity}, {subset}", "", title, "", to_markdown_text(texts)]
    return "\n".join(lines)


def cost_markdown(summary: pd.DataFrame, *, dataset: str, tails: list[str], methods: list[str]) -> str:
    """What every number cost, per tail type: a row per method with its image AUROC over all classes and the
    cost of its runs (mean over split seeds x model seeds, ± the standard deviation over split seeds)."""
    from .aggregate import COST_COLUMNS

    order = ["image AUROC (all)"] + [name for name, _ in COST_COLUMNS.values()]
    lines = [
        f"Cost beside accuracy on {dataset}, measured inside each fit job: mean over runs (± std over split "
        "seeds). Fit seconds include the coreset, the denoising filter and the TailSampler; inference = scoring "
        "the test images on the cached features; model MiB: what a method keeps to score (its memory bank; PaDiM's "
        "Gaussians). Reused parts s: the seconds of the parts a fit read back from another fit of the same split "
        "and model seed (methods.reuse_fits: the same numbers, not counted in its fit s); a fit alone takes fit s "
        "+ reused parts s.\n"
    ]
    for tail in tails:
        part = summary[summary["tail"] == tail]
        columns = [q for q in order if q in set(part["quantity"])]
        if part.empty:
            continue
        lines += [f"\n**{tail}**\n", "| method | " + " | ".join(columns) + " | device |"]
        lines.append("|---" * (len(columns) + 2) + "|")
        for method in methods:
            cells = part[part["method"] == method].set_index("quantity")
            if cells.empty:
                continue
            texts = []
            for quantity in columns:
                if quantity not in cells.index:
                    texts.append("–")
                    continue
                cell = cells.loc[quantity]
                spread = f" ± {cell['std_split']:.3g}" if pd.notna(cell["std_split"]) else ""
                texts.append(f"{cell['mean']:.4g}{spread}")
            device = cells["device"].dropna().iloc[0] if cells["device"].notna().any() else ""
            lines.append(f"| {method} | " + " | ".join(texts) + f" | {device} |")
    return "\n".join(lines) + "\n"


def category_diagnostics_markdown(table: pd.DataFrame, *, dataset: str, tails: list[str], methods: list[str]) -> str:
    """The per-category diagnostics (:func:`tailedcore.reporting.aggregate.category_diagnostics`) as Markdown: per
    tail type and category, a row per method, its image AUROC beside what its memory bank kept of that class."""
    lines = [
        f"# Diagnostics on {dataset}, class by class",
        "",
        "Per category and method, mean over runs: the category's image AUROC beside what the memory bank keeps of "
        "it. pool / bank: the share of the training patches / of the memory rows that are this class's clean "
        "patches; enrichment = bank share / pool share (1: as a uniform draw would keep; noise: every patch of its "
        "injected images; defect: their cells a defect touches); filter removed: the share of the class's patches "
        "the denoising filter dropped; called tail: the share of its clean and of its injected images the "
        "TailSampler called tail; test score: the mean patch score of the class's good test patches, of its "
        "defective test images' patches and of the cells a defect touches; matched to a defect row: the share of "
        "those test patches whose nearest memory row is a defect cell (a defect the bank kept, that scores it as "
        "normal); matched in class: the share of its good test patches whose nearest row is of its own class. A "
        "method without a memory bank (PaDiM) shows its AUROC only.",
    ]
    value_columns = [c for c in table.columns if c not in ("tail", "category", "role", "method")]
    order = {m: i for i, m in enumerate(methods)}
    for tail in tails:
        part = table[table["tail"] == tail]
        if part.empty:
            continue
        lines += ["", f"## {tail}", "", "| category | role | method | " + " | ".join(value_columns) + " |"]
        lines.append("|---" * (len(value_columns) + 3) + "|")
        part = part.assign(_order=part["method"].map(order)).sort_values(["category", "role", "_order"], kind="stable")
        for row in part.to_dict("records"):
            texts = ["–" if pd.isna(row[c]) else f"{row[c]:.3g}" for c in value_columns]
            lines.append(f"| {row['category']} | {row['role']} | {row['method']} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"
