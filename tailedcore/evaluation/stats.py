"""Statistics behind every table cell: seed spreads, confidence intervals and paired comparisons.

A cell (dataset, metric, method, tail, group) has one value per run: the mean over the group's classes for
one split seed s and one model seed m, v[s, m]. We report

- ``mean``: the mean over all runs;
- ``std_split``: the standard deviation over split seeds of the per-split means (model seeds averaged);
- ``std_model``: the model-seed standard deviation within a split, pooled over the splits;
- a 95 % confidence interval of the mean: Student's t over the per-split means (the split is the
  independent unit; its model seeds are averaged inside it); with one split, t over the model seeds.

Paired comparisons of two methods use the units both share, (split seed, model seed, class): the mean
difference, a paired bootstrap 95 % interval (units resampled with replacement, seeded), the Wilcoxon
signed-rank p-value, and Holm's step-down adjustment across the comparisons of one table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_SEED = 0
SIGNIFICANCE_COLUMNS = [
    "dataset",
    "metric",
    "tail",
    "group",
    "method_a",
    "method_b",
    "n_pairs",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "significant",
]


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Student's t confidence interval of the mean; NaN with fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return float("nan"), float("nan")
    mean, sem = values.mean(), values.std(ddof=1) / np.sqrt(len(values))
    if sem == 0:
        return float(mean), float(mean)
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * sem
    return float(mean - half), float(mean + half)


def cell_statistics(runs: pd.DataFrame, bounds: tuple[float, float] = (0.0, 100.0)) -> dict:
    """``runs``: one row per (seed, model_seed) with ``value``. Mean, both spreads and the 95 % interval,
    clipped to ``bounds`` (an AUROC in percent cannot leave [0, 100])."""
    table = runs.pivot_table(index="seed", columns="model_seed", values="value", aggfunc="mean")
    if table.empty:  # a group without classes (e.g. no tail class): an empty cell, not an error
        nan = float("nan")
        return dict(mean=nan, std_split=nan, std_model=nan, ci_low=nan, ci_high=nan, n_seeds=0, n_model_seeds=0)
    per_split = table.mean(axis=1).to_numpy()
    within = table.var(axis=1, ddof=1).to_numpy() if table.shape[1] > 1 else np.array([np.nan])
    std_split = float(np.std(per_split, ddof=1)) if len(per_split) > 1 else float("nan")
    std_model = float(np.sqrt(np.nanmean(within))) if np.isfinite(within).any() else float("nan")
    if len(per_split) > 1:
        low, high = t_interval(per_split)
    else:
        low, high = t_interval(table.iloc[0].dropna().to_numpy())
    low, high = (float(np.clip(v, *bounds)) if np.isfinite(v) else v for v in (low, high))
    return {
        "mean": float(np.nanmean(table.to_numpy())),
        "std_split": std_split,
        "std_model": std_model,
        "ci_low": low,
        "ci_high": high,
        "n_seeds": int(len(per_split)),
        "n_model_seeds": int(table.shape[1]),
    }


def paired_bootstrap_interval(
    differences: np.ndarray, level: float = 0.95, samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED
) -> tuple[float, float]:
    """Percentile interval of the mean difference over ``samples`` resamples of the paired units."""
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), size=(samples, len(differences)))].mean(axis=1)
    return float(np.quantile(means, 0.5 - level / 2)), float(np.quantile(means, 0.5 + level / 2))


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value; 1 when every difference is zero (nothing to tell apart)."""
    differences = np.asarray(differences, dtype=np.float64)
    if len(differences) == 0:
        return float("nan")
    if not np.any(differences != 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment (controls the family-wise error rate); NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, (len(order) - rank) * p[index])
        adjusted[index] = min(1.0, running)
    return adjusted


def paired_comparisons(per_class: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of methods per (dataset, metric, tail, group) on their shared units (split seed, model seed,
    class); ``per_class`` has dataset, metric, method, tail, seed, model_seed, category, class_role and
    ``value_percent``. Holm's adjustment runs over the comparisons of each (dataset, metric)."""
    rows = []
    units = ["seed", "model_seed", "category"]
    for (dataset, metric, tail), part in per_class.groupby(["dataset", "metric", "tail"], sort=False):
        methods = list(dict.fromkeys(part["method"]))
        for group in ("tail", "head", "all"):
            chosen = part if group == "all" else part[part["class_role"] == group]
            wide = chosen.pivot_table(index=units, columns="method", values="value_percent", aggfunc="mean")
            for i, first in enumerate(methods):
                for second in methods[i + 1 :]:
                    if first not in wide or second not in wide:
                        continue
                    both = wide[[first, second]].dropna()
                    differences = (both[first] - both[second]).to_numpy()
                    low, high = paired_bootstrap_interval(differences)
                    rows.append(
                        {
                            "dataset": dataset,
                            "metric": metric,
                            "tail": tail,
                            "group": group,
                            "method_a": first,
                            "method_b": second,
                            "n_pairs": len(differences),
                            "mean_diff": float(differences.mean()) if len(differences) else float("nan"),
                            "ci_low": low,
                            "ci_high": high,
                            "p_value": wilcoxon_p(differences),
                        }
                    )
    frame = pd.DataFrame(rows, columns=SIGNIFICANCE_COLUMNS[:-2])
    frame["p_adjusted"] = np.nan
    for _, part in frame.groupby(["dataset", "metric"], sort=False):
        frame.loc[part.index, "p_adjusted"] = holm(part["p_value"].to_numpy())
    frame["significant"] = frame["p_adjusted"] < alpha
    return frame[SIGNIFICANCE_COLUMNS]


def seeds_for_precision(std_split: float, std_model: float, half_width: float, model_seeds: int = 1) -> int:
    """Split seeds needed for a 95 % interval of about ±``half_width`` points, with ``model_seeds`` per split:
    n = (1.96 / half_width)^2 (std_split_between^2 + std_model^2 / model_seeds), at least 2."""
    variance = np.nan_to_num(std_split) ** 2 + np.nan_to_num(std_model) ** 2 / max(1, model_seeds)
    return int(max(2, np.ceil((1.96 / half_width) ** 2 * variance)))
