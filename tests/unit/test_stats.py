"""The statistics behind the tables: intervals, spreads, paired tests and Holm, against scipy and direct
computations on fixed fixtures."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from tailedcore.evaluation.stats import (
    cell_statistics,
    holm,
    paired_bootstrap_interval,
    paired_comparisons,
    seeds_for_precision,
    t_interval,
    wilcoxon_p,
)

VALUES = np.array([91.3, 94.1, 92.0, 93.2, 92.8])


def test_t_interval_equals_scipy():
    low, high = t_interval(VALUES)
    expected = scipy_stats.t.interval(0.95, len(VALUES) - 1, loc=VALUES.mean(), scale=scipy_stats.sem(VALUES))
    assert (low, high) == pytest.approx(expected, rel=1e-12)
    assert np.isnan(t_interval(VALUES[:1])[0])


def test_cell_statistics_separate_split_and_model_spreads():
    # v[s, m] = split effect + model effect: split seeds 1..3, model seeds 0..1
    split_effect = {1: 90.0, 2: 92.0, 3: 94.0}
    model_effect = {0: -0.5, 1: 0.5}
    runs = pd.DataFrame(
        [{"seed": s, "model_seed": m, "value": split_effect[s] + model_effect[m]} for s in (1, 2, 3) for m in (0, 1)]
    )
    cell = cell_statistics(runs)
    assert cell["mean"] == pytest.approx(92.0)
    assert cell["std_split"] == pytest.approx(2.0)  # std of 90, 92, 94
    assert cell["std_model"] == pytest.approx(np.std([-0.5, 0.5], ddof=1))
    expected = scipy_stats.t.interval(0.95, 2, loc=92.0, scale=2.0 / np.sqrt(3))
    assert (cell["ci_low"], cell["ci_high"]) == pytest.approx(expected)
    assert cell["n_seeds"] == 3 and cell["n_model_seeds"] == 2
    one_split = cell_statistics(runs[runs["seed"] == 1])  # one split: the interval comes from the model seeds
    assert np.isnan(one_split["std_split"]) and np.isfinite(one_split["ci_low"])


def test_bootstrap_interval_equals_a_direct_resampling():
    differences = np.array([0.5, 1.2, -0.3, 2.0, 0.8, 1.1, -0.2, 0.9])
    rng = np.random.default_rng(7)
    means = [differences[rng.integers(0, 8, size=8)].mean() for _ in range(2000)]
    direct = np.quantile(means, [0.025, 0.975])
    assert paired_bootstrap_interval(differences, samples=2000, seed=7) == pytest.approx(tuple(direct), abs=1e-12)


def test_wilcoxon_and_holm_equal_direct_computations():
    differences = np.array([1.5, -0.4, 2.2, 0.9, 3.1, -1.0, 0.7, 1.8, 2.5, 0.2])
    assert wilcoxon_p(differences) == pytest.approx(scipy_stats.wilcoxon(differences).pvalue)
    p = np.array([0.01, 0.04, 0.03, 0.2, np.nan])
    # Holm by hand: sorted 0.01, 0.03, 0.04, 0.2 times 4, 3, 2, 1, made monotone
    expected = np.array([0.04, 0.09, 0.09, 0.2, np.nan])
    np.testing.assert_allclose(holm(p), expected)


def _per_class(values: dict[str, np.ndarray]) -> pd.DataFrame:
    rows = []
    for method, per_unit in values.items():
        for i, value in enumerate(per_unit):
            rows.append(
                {
                    "dataset": "d",
                    "metric": "image_auroc",
                    "method": method,
                    "tail": "step_k1",
                    "seed": 1 + i // 6,
                    "model_seed": (i // 3) % 2,
                    "category": f"c{i % 3}",
                    "class_role": "tail" if i % 3 else "head",
                    "value_percent": value,
                }
            )
    return pd.DataFrame(rows)


def test_identical_methods_give_p_one_and_an_interval_around_zero():
    values = np.random.default_rng(0).uniform(80, 100, 12)
    comparisons = paired_comparisons(_per_class({"a": values, "b": values.copy()}))
    assert len(comparisons) == 3  # tail, head, all
    assert (comparisons["p_value"] == 1.0).all() and (comparisons["p_adjusted"] == 1.0).all()
    assert (comparisons["mean_diff"] == 0).all() and (comparisons["ci_low"] == 0).all()
    assert (comparisons["ci_high"] == 0).all() and not comparisons["significant"].any()


def test_a_clear_lead_is_significant_on_paired_units():
    rng = np.random.default_rng(1)
    base = rng.uniform(80, 90, 24)
    better = base + 3.0 + rng.normal(0, 0.5, 24)
    comparisons = paired_comparisons(_per_class({"better": better, "base": base})).set_index("group")
    row = comparisons.loc["all"]
    assert row["n_pairs"] == 24 and row["mean_diff"] == pytest.approx((better - base).mean())
    assert row["ci_low"] > 2 and row["ci_high"] < 4 and row["significant"]
    assert row["p_value"] == pytest.approx(scipy_stats.wilcoxon(better - base).pvalue)


def test_seeds_for_precision():
    # std 2 over splits, 1 over models, one model seed: (1.96 / 1)^2 * (4 + 1) = 19.2 -> 20 split seeds
    assert seeds_for_precision(2.0, 1.0, half_width=1.0) == 20
    assert seeds_for_precision(2.0, 1.0, half_width=1.0, model_seeds=4) == 17
