"""Figures (PNG + SVG, deterministic): per-class AUROC bars, the TailSampler's view, anomaly maps, what the
memory banks keep (diagnostics).

Over 300 lines: every figure of the workflow in one module with one style, each a short function."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from ..data.images import Geometry, load_image, load_mask  # noqa: E402
from ..evaluation.metrics import anomaly_maps  # noqa: E402

STYLE = {
    "figure.dpi": 110,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "tailedcore",
    "savefig.bbox": "tight",
}
METHOD_COLOURS = {"patchcore": "#4c72b0", "softpatch": "#dd8452", "tailedcore": "#55a868", "padim": "#8172b3"}
GROUP_NAMES = {"tail": "C_t", "head": "C_h", "all": "all"}


def save(figure, stem: str | Path) -> list[Path]:
    """Write ``stem``.png and ``stem``.svg (no timestamps, fixed hash salt: same input, same bytes)."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    figure.savefig(paths[0], metadata={"Software": None})
    figure.savefig(paths[1], metadata={"Date": None, "Creator": None})
    plt.close(figure)
    return paths


def per_class_bars(per_class: pd.DataFrame, metric: str, *, tail: str, seed: int, title: str, stem) -> list[Path]:
    """Grouped bars for one run: one group per class, one bar per method; tail classes shaded and labelled."""
    part = per_class[(per_class["metric"] == metric) & (per_class["tail"] == tail) & (per_class["seed"] == seed)]
    methods = list(dict.fromkeys(part["method"]))
    roles = part.groupby("category")["class_role"].first()
    categories = sorted(roles.index, key=lambda c: (roles[c] != "tail", c))  # tail classes first
    with plt.rc_context(STYLE):
        figure, axis = plt.subplots(figsize=(max(6, 0.75 * len(categories)), 3.2))
        width = 0.8 / max(1, len(methods))
        for i, category in enumerate(categories):
            if roles[category] == "tail":
                axis.axvspan(i - 0.45, i + 0.45, color="0.92", zorder=0)
        for j, method in enumerate(methods):
            values = part[part["method"] == method].set_index("category")["value_percent"].reindex(categories)
            axis.bar(
                np.arange(len(categories)) + (j - (len(methods) - 1) / 2) * width,
                values,
                width,
                label=method,
                color=METHOD_COLOURS.get(method),
                zorder=2,
            )
        axis.set_xticks(
            np.arange(len(categories)),
            [f"{c}\n(tail)" if roles[c] == "tail" else c for c in categories],
            rotation=0,
            fontsize=7,
        )
        axis.set_ylabel(f"{metric.replace('_', ' ')} (%)")
        low = np.nanmin(part["value_percent"]) if len(part) else 0
        axis.set_ylim(max(0, 10 * np.floor(low / 10) - 5), 100)
        axis.set_title(title)
        handles, labels = axis.get_legend_handles_labels()
        if (roles == "tail").any():
            handles.append(Patch(color="0.92", label="tail class"))
            labels.append("tail class")
        axis.legend(
            handles, labels, ncol=len(labels), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False
        )
        return save(figure, stem)


def tail_sampler_figure(report: dict, true_sizes: np.ndarray, title: str, stem) -> list[Path]:
    """Left: estimated class size per training image against its true class size (clean images; noise
    images at their class); right: the class-size list with the elbow, the cap and the chosen cut."""
    kappa = np.asarray(report["estimated_class_sizes"], dtype=float)
    sizes = report["tail_size_list"]
    with plt.rc_context(STYLE):
        figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
        jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(kappa)) * np.maximum(1, true_sizes) * 0.1
        predicted = kappa <= report["tail_cut"]
        left.scatter(true_sizes + jitter, kappa, s=8, c=np.where(predicted, "#c44e52", "#4c72b0"), alpha=0.6)
        top = max(true_sizes.max(), kappa.max()) * 1.1
        left.plot([0, top], [0, top], color="0.6", lw=0.8, ls="--")
        left.axhline(report["tail_cut"], color="#c44e52", lw=0.8)
        left.set_xlabel("true class size (images in the training pool)")
        left.set_ylabel("estimated class size $\\kappa$")
        left.set_title("estimated against true class size")
        left.legend(
            handles=[
                Line2D([], [], marker="o", ls="", color="#c44e52", label="predicted tail ($\\kappa \\leq K^*$)"),
                Line2D([], [], marker="o", ls="", color="#4c72b0", label="predicted head"),
                Line2D([], [], ls="--", lw=0.8, color="0.6", label="estimate = truth"),
                Line2D([], [], lw=0.8, color="#c44e52", label="cut $K^*$"),
            ],
            fontsize=7,
        )
        right.plot(np.arange(len(sizes)), sizes, marker="o", ms=3, color="#4c72b0")
        right.plot([0, len(sizes) - 1], [sizes[0], sizes[-1]], color="0.6", lw=0.8, ls="--", label="chord")
        right.axhline(report["tail_elbow"], color="#8172b3", lw=0.8, ls=":", label=f"elbow {report['tail_elbow']}")
        right.axhline(report["tail_cap"], color="#dd8452", lw=0.8, ls=":", label=f"15 % cap {report['tail_cap']}")
        right.axhline(report["tail_cut"], color="#c44e52", lw=1.0, label=f"cut $K^*$ = {report['tail_cut']}")
        right.set_xlabel("estimated class (descending size)")
        right.set_ylabel("estimated size $\\eta$")
        right.legend(fontsize=7)
        figure.suptitle(title, y=1.03)
        return save(figure, stem)


def anomaly_map_figure(
    examples: pd.DataFrame, scores: dict[str, dict], *, geometry: Geometry, sigma: float, title: str, stem
) -> list[Path]:
    """Rows = test images (image_id, category, class_role, image_path, mask_path); columns = image, ground
    truth (only when the dataset has masks) and each method's anomaly map (normalised per map), all on the
    geometry's grid."""
    methods = list(scores)
    truth = bool((examples["mask_path"] != "").all()) if len(examples) else False
    first = 2 if truth else 1
    height, width = geometry.shape
    cell = (1.6 * max(0.5, min(2.5, width / height)), 1.6)  # panels follow the grid's aspect
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(
            max(1, len(examples)),
            first + len(methods),
            figsize=(cell[0] * (first + len(methods)), cell[1] * max(1, len(examples))),
            squeeze=False,
        )
        for row, example in enumerate(examples.itertuples(index=False)):
            axes[row, 0].imshow(load_image(example.image_path, geometry))
            axes[row, 0].set_ylabel(f"{example.category}\n({example.class_role})", fontsize=7)
            if truth:
                axes[row, 1].imshow(load_mask(example.mask_path, geometry, "half"), cmap="gray", vmin=0, vmax=1)
            for col, method in enumerate(methods, start=first):
                position = scores[method]["position"][example.image_id]
                amap = anomaly_maps(scores[method]["patch_scores"][position][None], geometry.shape, sigma)[0]
                axes[row, col].imshow(amap, cmap="inferno")
            for axis in axes[row]:
                axis.set_xticks([])
                axis.set_yticks([])
        for col, name in enumerate(["image", *(["ground truth"] if truth else []), *methods]):
            axes[0, col].set_title(name, fontsize=8)
        figure.suptitle(f"{title}\nanomaly maps on the model's grid, each scaled to its own range", fontsize=9)
        return save(figure, stem)


def noise_sweep_figure(sweep: pd.DataFrame, title: str, stem) -> list[Path]:
    """Image AUROC against the noise ratio, one line per method; tail and head classes in two panels."""
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
        for axis, group in zip(axes, ("tail", "head")):
            part = sweep[sweep["group"] == group]
            for method, line in part.groupby("method", sort=False):
                line = line.sort_values("noise_ratio")
                axis.plot(
                    line["noise_ratio"], line["mean"], marker="o", ms=3, label=method, color=METHOD_COLOURS.get(method)
                )
            axis.set_title(f"{group} classes")
            axis.set_xlabel("noise ratio")
        axes[0].set_ylabel("image AUROC (%)")
        axes[1].legend(fontsize=7)
        figure.suptitle(title, y=1.03)
        return save(figure, stem)


def paired_difference_figure(
    comparisons: pd.DataFrame, reference: str, tails: list[str], title: str, stem
) -> list[Path]:
    """Per tail type: every method minus ``reference`` on the paired units, per group (C_t, C_h, all), with
    the paired bootstrap 95 % interval; a filled marker where the Holm-adjusted p < 0.05."""
    rows = []
    for row in comparisons.itertuples(index=False):
        if reference not in (row.method_a, row.method_b):
            continue
        sign = 1.0 if row.method_b == reference else -1.0
        other = row.method_a if row.method_b == reference else row.method_b
        low, high = sorted((sign * row.ci_low, sign * row.ci_high))
        rows.append((row.tail, row.group, other, sign * row.mean_diff, low, high, bool(row.significant)))
    frame = pd.DataFrame(rows, columns=["tail", "group", "method", "diff", "low", "high", "significant"])
    methods = list(dict.fromkeys(frame["method"]))
    groups = ["tail", "head", "all"]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(
            1,
            max(1, len(tails)),
            figsize=(3.2 * max(1, len(tails)), 0.5 + 0.32 * max(1, len(methods) * 3)),
            sharey=True,
            squeeze=False,
        )
        for axis, tail in zip(axes[0], tails):
            part = frame[frame["tail"] == tail]
            labels = []
            for position, (method, group) in enumerate((m, g) for m in methods for g in groups):
                labels.append(f"{method} ({GROUP_NAMES[group]})")
                found = part[(part["method"] == method) & (part["group"] == group)]
                if found.empty:
                    continue
                item = found.iloc[0]
                colour = METHOD_COLOURS.get(method, "0.3")
                axis.errorbar(
                    item["diff"],
                    position,
                    xerr=[[item["diff"] - item["low"]], [item["high"] - item["diff"]]],
                    fmt="o",
                    ms=4,
                    color=colour,
                    mfc=colour if item["significant"] else "white",
                    capsize=2,
                    lw=1,
                )
            axis.axvline(0, color="0.5", lw=0.8, ls="--")
            axis.set_yticks(range(len(labels)))
            axis.set_yticklabels(labels, fontsize=7)
            axis.invert_yaxis()
            axis.set_title(tail, fontsize=8)
            axis.set_xlabel(f"AUROC points vs {reference}", fontsize=7)
        handles = [
            Line2D(
                [], [], marker="o", ls="-", lw=1, color="0.2", mfc="0.2", label="significant (Holm-adjusted p < 0.05)"
            ),
            Line2D([], [], marker="o", ls="-", lw=1, color="0.2", mfc="white", label="not significant"),
            Line2D([], [], ls="--", lw=0.8, color="0.5", label="no difference"),
        ]
        figure.legend(
            handles=handles,
            loc="lower center",
            bbox_to_anchor=(0.5, -0.02),
            ncol=3,
            fontsize=7,
            frameon=False,
            title="mean paired difference, bar: 95 % bootstrap interval",
            title_fontsize=7,
        )
        figure.subplots_adjust(bottom=0.28 if len(methods) <= 2 else 0.18)
        figure.suptitle(title, fontsize=8)
        return save(figure, stem)


def diagnostics_figure(summary: pd.DataFrame, tails: list[str], methods: list[str], title: str, stem) -> list[Path]:
    """The paper's motivation figure, measured: per tail type (columns) and method (bars), the share of the memory
    bank taken by tail-class clean patches (top) and by defect patches (bottom), each relative to their share
    of the training pool (1 = proportional), with 95 % intervals over the split seeds."""
    subset = "defect" if (summary["subset"] == "defect").any() else "noise"
    rows = [("clean", "tail", "tail-class clean patches"), (subset, "all", f"{subset} patches")]
    enrichment = summary[summary["quantity"] == "enrichment"]
    shown = [m for m in methods if m in set(enrichment["method"])]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(2, len(tails), figsize=(2.6 * len(tails) + 0.8, 5.2), squeeze=False, sharey="row")
        for row, (patches, group, label) in enumerate(rows):
            for col, tail in enumerate(tails):
                axis = axes[row, col]
                part = enrichment[(enrichment["tail"] == tail) & (enrichment["subset"] == patches)]
                part = part[part["group"] == group].set_index("method")
                for x, method in enumerate(shown):
                    if method not in part.index:
                        continue
                    cell = part.loc[method]
                    error = None
                    if np.isfinite(cell["ci_low"]) and np.isfinite(cell["ci_high"]):
                        error = [[cell["mean"] - cell["ci_low"]], [cell["ci_high"] - cell["mean"]]]
                    axis.bar(x, cell["mean"], color=METHOD_COLOURS.get(method, "0.5"), yerr=error, capsize=2)
                axis.axhline(1.0, color="0.3", lw=0.8, ls="--")
                axis.set_xticks(range(len(shown)), shown, rotation=30, ha="right", fontsize=7)
                if row == 0:
                    axis.set_title(tail)
                if col == 0:
                    axis.set_ylabel(f"{label}:\nbank share / pool share")
        figure.suptitle(title, y=1.02)
        return save(figure, stem)


def category_diagnostics_figure(table: pd.DataFrame, tails: list[str], methods: list[str], title: str, stem):
    """Class by class, per tail type (columns): each category's image AUROC (y) against how its clean patches
    (top) and its injected images' defect (or noise) patches (bottom) are kept in the method's memory bank
    relative to the pool (x, log scale; 1 = proportional; none kept: at the left edge, marked "(0)"); a marker per
    (category, method), tail classes hollow, the category named beside it. Methods without a bank are left out
    (they have no x)."""
    from .aggregate import CATEGORY_COLUMNS

    defect = CATEGORY_COLUMNS["enrichment", "defect"]
    second = defect if defect in table and table[defect].notna().any() else CATEGORY_COLUMNS["enrichment", "noise"]
    panels = [
        (CATEGORY_COLUMNS["enrichment", "clean"], "its clean patches"),
        (second, f"its {second.split()[0]} patches"),
    ]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(2, len(tails), figsize=(3.2 * len(tails) + 0.8, 6.0), squeeze=False, sharey=True)
        for row, (column, label) in enumerate(panels):
            for col, tail in enumerate(tails):
                axis = axes[row, col]
                part = table[(table["tail"] == tail) & table[column].notna()] if column in table else table.iloc[:0]
                positive = part[column][part[column] > 0] if column in part else pd.Series([], dtype=float)
                floor = 10 ** np.floor(np.log10(positive.min())) / 2 if len(positive) else 0.1  # where 0 is drawn
                for method in methods:
                    cells = part[part["method"] == method]
                    colour = METHOD_COLOURS.get(method, "0.5")
                    for cell in cells.to_dict("records"):
                        hollow = cell["role"] == "tail"
                        x = cell[column] if cell[column] > 0 else floor  # none kept: at the left edge, "(0)"
                        axis.scatter(
                            x, cell["image AUROC (%)"], s=22, facecolors="none" if hollow else colour, edgecolors=colour
                        )
                        axis.annotate(
                            cell["category"] + ("" if cell[column] > 0 else " (0)"),
                            (x, cell["image AUROC (%)"]),
                            fontsize=6,
                            xytext=(3, 2),
                            textcoords="offset points",
                        )
                axis.set_xscale("log")
                axis.xaxis.set_minor_formatter(NullFormatter())  # decades only: minor labels overlap
                axis.axvline(1.0, color="0.3", lw=0.8, ls="--")
                if row == 0:
                    axis.set_title(tail)
                axis.set_xlabel(f"{label}: bank share / pool share", fontsize=7)
                if col == 0:
                    axis.set_ylabel("image AUROC of the class (%)")
        banked = table[table[panels[0][0]].notna()] if panels[0][0] in table else table.iloc[:0]
        shown = [m for m in methods if m in set(banked["method"])]
        handles = [Line2D([], [], ls="", marker="o", color=METHOD_COLOURS.get(m, "0.5"), label=m, ms=5) for m in shown]
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", color="0.3", label="tail class (hollow)", ms=5))
        figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, bbox_to_anchor=(0.5, -0.04))
        figure.suptitle(title, y=1.02)
        return save(figure, stem)


def sweep_diagnostics_figure(sweep: pd.DataFrame, title: str, stem) -> list[Path]:
    """Against the noise ratio, one line per method: the enrichment of tail-class clean patches and of defect
    patches in the memory bank (the quantities of :func:`diagnostics_figure`)."""
    subset = "defect" if (sweep["subset"] == "defect").any() else "noise"
    panels = [("clean", "tail", "tail-class clean patches"), (subset, "all", f"{subset} patches")]
    with plt.rc_context(STYLE):
        figure, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for axis, (patches, group, label) in zip(axes, panels):
            part = sweep[(sweep["subset"] == patches) & (sweep["group"] == group)]
            for method, line in part.groupby("method", sort=False):
                line = line.sort_values("noise_ratio")
                axis.plot(
                    line["noise_ratio"], line["mean"], marker="o", ms=3, label=method, color=METHOD_COLOURS.get(method)
                )
            axis.axhline(1.0, color="0.3", lw=0.8, ls="--")
            axis.set_title(f"{label} in the bank")
            axis.set_xlabel("noise ratio")
            axis.set_ylabel("bank share / pool share")
        axes[1].legend(fontsize=7)
        figure.suptitle(title, y=1.03)
        return save(figure, stem)
