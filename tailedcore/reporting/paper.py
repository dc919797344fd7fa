"""The paper's published numbers (Tables 1-4) and the side-by-side comparison with ours."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

# our method name -> the paper's row name
PAPER_METHOD_NAMES = {"patchcore": "PatchCore", "softpatch": "SoftPatch", "tailedcore": "TailedCore", "padim": "PaDiM"}
# table number of (paper dataset, metric)
PAPER_TABLE_NUMBERS = {
    ("mvtecad", "image_auroc"): 1,
    ("visa", "image_auroc"): 2,
    ("mvtecad", "pixel_auroc"): 3,
    ("visa", "pixel_auroc"): 4,
}
# the paper's coreset ratio for every method with a greedy coreset (docs/protocol.md §2.2)
PAPER_CORESET_RATIO = 0.1
CORESET_METHODS = ("patchcore", "softpatch", "tailedcore")


def coreset_departure(methods: dict) -> str:
    """A sentence for the captions when a configured method's coreset ratio is not the paper's, else ''."""
    ratios = {
        name: float((methods.get(name) or {}).get("coreset_ratio", PAPER_CORESET_RATIO))
        for name in methods.get("run", [])
        if name in CORESET_METHODS
    }
    departed = {name: ratio for name, ratio in ratios.items() if ratio != PAPER_CORESET_RATIO}
    if not departed:
        return ""
    listed = ", ".join(f"{PAPER_METHOD_NAMES.get(n, n)} {100 * r:g} %" for n, r in departed.items())
    return f"Coreset ratio not the paper's {100 * PAPER_CORESET_RATIO:g} %: {listed}."


# docs/protocol.md §3.2: cells the paper itself contradicts
KNOWN_TYPOS = {
    ("mvtecad", "image_auroc", "TailedCore", "step_k4", "head"): "typo in the paper: its C_t and all imply 95.55",
    ("mvtecad", "pixel_auroc", "TailedCore", "step_k4", "head"): "typo in the paper: its C_t and all imply 93.51",
}
COMPARISON_COLUMNS = [
    "metric",
    "method",
    "source",
    "tail",
    "group",
    "ours",
    "ours_std",
    "paper",
    "difference",
    "paper_note",
]


def paper_numbers() -> pd.DataFrame:
    """Tidy rows: table, dataset, metric, method, venue, tail_type, class_group, value (percent)."""
    with resources.files("tailedcore.data").joinpath("paper_tables.csv").open() as handle:
        return pd.read_csv(handle)


def _notes(paper: pd.DataFrame) -> dict:
    """Per cell: a known typo, or 'all' lying outside [C_t, C_h] (impossible for a mean of the two groups)."""
    notes = {}
    for key, part in paper.groupby(["dataset", "metric", "method", "tail_type"]):
        values = part.set_index("class_group")["value"]
        if {"tail", "head", "all"} <= set(values.index):
            low, high = sorted((values["tail"], values["head"]))
            if not low - 0.005 <= values["all"] <= high + 0.005:
                notes[key + ("all",)] = "in the paper, all lies outside [C_t, C_h]"
    for key, note in KNOWN_TYPOS.items():
        notes[key] = note
    return notes


def compare_with_paper(summary: pd.DataFrame, paper_dataset: str, paper_names: dict | None = None) -> pd.DataFrame:
    """Every cell both have (ours vs the paper, and the difference in points), plus the paper's rows for
    methods we do not run, marked source = 'quoted'. ``paper_names``: more of our methods that regenerate a
    paper row (method -> the paper's row name, e.g. an anomalib WinClip entry -> 'WinCLIP')."""
    names = {**PAPER_METHOD_NAMES, **(paper_names or {})}
    paper = paper_numbers()
    paper = paper[paper["dataset"] == paper_dataset]
    notes = _notes(paper)
    rows = []
    ours_by_cell = {}
    for record in summary.itertuples(index=False):
        name = names.get(record.method, record.method)
        ours_by_cell[(record.metric, name, record.tail, record.group)] = (record.method, record.mean, record.std)
    for record in paper.itertuples(index=False):
        key = (record.metric, record.method, record.tail_type, record.class_group)
        note = notes.get((paper_dataset, record.metric, record.method, record.tail_type, record.class_group), "")
        if key in ours_by_cell:
            method, mean, std = ours_by_cell.pop(key)
            rows.append(
                (
                    record.metric,
                    method,
                    "ours",
                    record.tail_type,
                    record.class_group,
                    mean,
                    std,
                    record.value,
                    mean - record.value,
                    note,
                )
            )
        elif record.method not in names.values():
            rows.append(
                (
                    record.metric,
                    record.method,
                    "quoted",
                    record.tail_type,
                    record.class_group,
                    np.nan,
                    np.nan,
                    record.value,
                    np.nan,
                    note,
                )
            )
    for (metric, _, tail, group), (method, mean, std) in ours_by_cell.items():  # ours without a paper number
        rows.append((metric, method, "ours", tail, group, mean, std, np.nan, np.nan, ""))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)
