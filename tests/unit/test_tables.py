import re

import numpy as np
import pandas as pd
import pytest

from tailedcore.reporting.aggregate import group_means, seed_summary, wide_table
from tailedcore.reporting.render import to_latex, to_markdown


def metric_rows():
    rows = []
    # seed 1: tail classes a=0.6, b=0.8; head class c=1.0 ; seed 2: a=0.7, b=0.9, c=0.5
    for seed, values in {1: dict(a=0.6, b=0.8, c=1.0), 2: dict(a=0.7, b=0.9, c=0.5)}.items():
        for category, value in values.items():
            rows.append(
                dict(
                    dataset="d",
                    tail="pareto",
                    seed=seed,
                    method="patchcore",
                    category=category,
                    class_role="head" if category == "c" else "tail",
                    metric="image_auroc",
                    value=value,
                )
            )
            rows.append(
                dict(
                    dataset="d",
                    tail="pareto",
                    seed=seed,
                    method="other",
                    category=category,
                    class_role="head" if category == "c" else "tail",
                    metric="image_auroc",
                    value=value - 0.1,
                )
            )
    return pd.DataFrame(rows)


def test_group_means_per_seed_then_seed_mean():
    per_seed = group_means(metric_rows())
    summary = seed_summary(per_seed).set_index(["method", "group"])["mean"]
    # tail: seed means 70 and 80 -> 75; head: 100 and 50 -> 75; all: 80 and 70 -> 75
    assert summary[("patchcore", "tail")] == pytest.approx(75.0)
    assert summary[("patchcore", "head")] == pytest.approx(75.0)
    assert summary[("patchcore", "all")] == pytest.approx(75.0)
    seed2_all = per_seed[(per_seed["seed"] == 2) & (per_seed["group"] == "all") & (per_seed["method"] == "patchcore")]
    assert seed2_all["value"].item() == pytest.approx(70.0)


def test_latex_is_balanced_and_bolds_the_best():
    summary = seed_summary(group_means(metric_rows()))
    table = wide_table(summary, ["pareto"], ["patchcore", "other"])
    assert list(table.columns) == ["pareto_tail", "pareto_head", "pareto_all"]
    latex = to_latex(table, "caption", "tab:x")
    assert latex.count(r"\begin{tabular}") == latex.count(r"\end{tabular}") == 1
    body = latex.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines()
    assert len(body) == 2  # one row per method
    for line in body:
        assert line.count("&") == 3 and line.endswith(r"\\")
    patchcore_row = next(line for line in body if line.startswith("patchcore"))
    assert re.findall(r"\\textbf\{([0-9.]+)\}", patchcore_row) == ["75.00", "75.00", "75.00"]
    assert r"\textbf" not in next(line for line in body if line.startswith("other"))


def test_a_group_without_classes_stays_as_an_empty_column():
    rows = metric_rows()
    rows["class_role"] = "head"
    table = wide_table(seed_summary(group_means(rows)), ["pareto"], ["patchcore"])
    assert list(table.columns) == ["pareto_tail", "pareto_head", "pareto_all"]
    assert pd.isna(table.loc["patchcore", "pareto_tail"])
    assert "--" in to_latex(table, "c", "l")


def test_markdown_shows_mean_and_std_and_bolds_the_best():
    summary = seed_summary(group_means(metric_rows()))
    table = wide_table(summary, ["pareto"], ["patchcore", "other"])
    std = wide_table(summary, ["pareto"], ["patchcore", "other"], values="std")
    markdown = to_markdown(table, std)
    lines = markdown.strip().splitlines()
    assert lines[0].startswith("| method | Pareto Ct | Pareto Ch | Pareto all")
    assert len(lines) == 4
    assert "**75.00 ± 7.07**" in lines[2]  # tail: seeds 70 and 80
    assert "**" not in lines[3]


def test_comparison_with_the_paper():
    from tailedcore.reporting.paper import compare_with_paper

    summary = pd.DataFrame(
        [
            dict(
                dataset="d",
                metric="image_auroc",
                method="tailedcore",
                tail="step_k4",
                group=g,
                mean=m,
                std=0.1,
                n_seeds=5,
            )
            for g, m in (("tail", 95.0), ("head", 96.0), ("all", 95.4))
        ]
    )
    comparison = compare_with_paper(summary, "mvtecad")
    ours = comparison[comparison["source"] == "ours"].set_index("group")
    assert ours.loc["tail", "paper"] == 95.82 and ours.loc["tail", "difference"] == pytest.approx(95.0 - 95.82)
    assert "typo" in ours.loc["head", "paper_note"]  # docs/protocol.md §3.2: 95.34 contradicts its own C_t and all
    quoted = comparison[comparison["source"] == "quoted"]
    assert {"HVQ", "WinCLIP", "AnomalyCLIP"} <= set(quoted["method"]) and quoted["ours"].isna().all()
    assert "PatchCore" not in set(quoted["method"])  # methods we run are never quoted as if they were not
    softpatch_pareto = comparison[(comparison["method"] == "SoftPatch") & (comparison["tail"] == "pareto")]
    assert softpatch_pareto.empty  # we did not run it here: no half comparison


def test_runtime_table_from_benchmark_files(tmp_path):
    from tailedcore.reporting.aggregate import runtime_table

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    files = []
    for stage, name, seconds, rss in (
        ("fit_score", "patchcore", 10, 700),
        ("fit_score", "patchcore", 20, 900),
        ("features", "fabric", 3, 1000),
    ):
        path = tmp_path / "results" / "benchmarks" / stage / "d" / f"x{len(files)}" / f"{name}.tsv"
        path.parent.mkdir(parents=True)
        path.write_text(header + f"{seconds}\t0:00:10\t{rss}\t0\t0\t0\t0\t0\t0\t1\n")
        files.append((stage, str(path)))
    stages = {}
    for stage, path in files:
        stages.setdefault(stage, []).append(path)
    table = runtime_table(stages).set_index(["stage", "method"])
    assert table.loc[("fit_score", "patchcore"), "mean_seconds"] == 15
    assert table.loc[("fit_score", "patchcore"), "peak_rss_mb"] == 900
    assert table.loc[("features", ""), "jobs"] == 1


def _legend_texts(monkeypatch, draw) -> list[str]:
    """The legend entries (and legend titles) of the figures ``draw`` saves."""
    import tailedcore.reporting.figures as figures

    texts = []

    def capture(figure, stem):
        legends = list(figure.legends) + [axis.get_legend() for axis in figure.axes if axis.get_legend()]
        for legend in legends:
            texts.extend(t.get_text() for t in legend.get_texts())
            texts.append(legend.get_title().get_text())
        figures.plt.close(figure)
        return []

    monkeypatch.setattr(figures, "save", capture)
    draw(figures)
    return texts


def test_the_paired_difference_figure_explains_its_marks(monkeypatch):
    comparisons = pd.DataFrame(
        [
            dict(tail="step_k1", group=g, method_a="patchcore", method_b="tailedcore", n_pairs=6, mean_diff=d,
                 ci_low=d - 1, ci_high=d + 1, p_value=0.01, p_adjusted=p, significant=p < 0.05, metric="image_auroc")
            for g, d, p in (("tail", -5.0, 0.01), ("head", 0.5, 0.6), ("all", -2.0, 0.03))
        ]
    )  # fmt: skip
    texts = _legend_texts(
        monkeypatch,
        lambda f: f.paired_difference_figure(
            comparisons, reference="tailedcore", tails=["step_k1"], title="t", stem="x"
        ),
    )
    assert "significant (Holm-adjusted p < 0.05)" in texts and "not significant" in texts
    assert any("95 % bootstrap interval" in t for t in texts)


def test_the_per_class_bars_name_the_shaded_tail_classes(monkeypatch):
    per_class = pd.DataFrame(
        [
            dict(metric="image_auroc", tail="step_k1", seed=1, method=m, category=c, class_role=r, value_percent=v)
            for m in ("patchcore", "tailedcore")
            for c, r, v in (("a", "tail", 80.0), ("b", "head", 95.0))
        ]
    )
    texts = _legend_texts(
        monkeypatch,
        lambda f: f.per_class_bars(per_class, "image_auroc", tail="step_k1", seed=1, title="t", stem="x"),
    )
    assert texts[:3] == ["patchcore", "tailedcore", "tail class"]


def test_the_cost_table_aggregates_every_run_like_every_other_number_beside_its_auroc():
    import pandas as pd

    from tailedcore.reporting.aggregate import cost_runs, cost_summary
    from tailedcore.reporting.render import cost_markdown

    def report(fit, per_image, rows):
        return {
            "cost": {
                "fit_seconds": fit,
                "coreset_seconds": fit / 2,
                "filter_seconds": 0.0,
                "tail_sampler_seconds": 0.0,
                "inference_seconds_per_image": per_image,
                "inference_throughput_fps": 1 / per_image,
                "memory_bank_rows": rows,
                "model_bytes": rows * 1024,
                "peak_rss_bytes": 2**30,
                "device": "cpu",
            }
        }

    reports = {
        "r/d/scores/step_k1/seed1/model0/patchcore.json": report(10.0, 0.002, 100),
        "r/d/scores/step_k1/seed2/model0/patchcore.json": report(20.0, 0.004, 300),
        "r/d/scores/step_k1/seed1/model0/baseline.json": {"fit_seconds": 3.0},  # a rule without a cost: left out
    }
    runs = cost_runs(reports)
    assert set(runs["method"]) == {"patchcore"} and set(runs["seed"]) == {1, 2}
    per_seed = pd.DataFrame(
        [
            dict(metric="image_auroc", method="patchcore", tail="step_k1", seed=s, model_seed=0, group="all", value=v)
            for s, v in ((1, 80.0), (2, 90.0))
        ]
    )
    summary = cost_summary(runs, per_seed).set_index("quantity")
    assert summary.loc["fit s", "mean"] == pytest.approx(15.0)
    assert summary.loc["fit s", "std_split"] == pytest.approx(np.std([10.0, 20.0], ddof=1))
    assert summary.loc["inference ms / image", "mean"] == pytest.approx(3.0)
    assert summary.loc["model MiB", "mean"] == pytest.approx(200 * 1024 / 2**20)
    assert summary.loc["image AUROC (all)", "mean"] == pytest.approx(85.0)
    assert summary.loc["fit s", "ci_low"] >= 0.0  # a time's interval is bounded below by 0
    text = cost_markdown(summary.reset_index(), dataset="d", tails=["step_k1"], methods=["patchcore", "baseline"])
    assert "| method | image AUROC (all) | fit s | coreset s |" in text
    assert "| patchcore | 85 ± 7.07 | 15 ± 7.07 | 7.5 ± 3.54 | 0 ± 0 | 0 ± 0 | 3 ± 1.41 |" in text
    assert "baseline" not in text.split("**step_k1**")[1]


def test_the_ablation_table_pairs_every_variant_with_the_reference():
    from tailedcore.reporting.ablation import ablation_latex, ablation_markdown, ablation_table
    from tailedcore.reporting.aggregate import per_class_table

    rows = []
    for seed in (1, 2, 3):
        for model_seed in (0, 1):
            for category, role in (("a", "tail"), ("b", "tail"), ("c", "head"), ("d", "head")):
                base = 0.8 + 0.01 * seed
                for method, shift in (("tailedcore", 0.0), ("tc_minus", -0.05 if role == "tail" else 0.0)):
                    rows.append(
                        dict(
                            dataset="d",
                            tail="step_k1",
                            seed=seed,
                            model_seed=model_seed,
                            method=method,
                            category=category,
                            class_role=role,
                            metric="image_auroc",
                            value=base + shift,
                        )
                    )
    metrics = pd.DataFrame(rows)
    per_seed = group_means(metrics)
    diagnostics = pd.DataFrame(
        [dict(tail="step_k1", method="tc_minus", quantity="enrichment", subset="defect", group="all", mean=3.5)]
    )
    cost = pd.DataFrame([dict(tail="step_k1", method="tc_minus", quantity="fit s", mean=2.0)])
    table = ablation_table(
        per_class=per_class_table(metrics),
        summary=seed_summary(per_seed),
        diagnostics=diagnostics,
        cost=cost,
        reference="tailedcore",
        methods=["tailedcore", "tc_minus"],
        labels={"tc_minus": "minus"},
    )
    cell = table.set_index(["method", "group"])
    assert cell.loc[("tc_minus", "tail"), "diff"] == pytest.approx(-5.0)  # every tail pair lost 5 points
    assert cell.loc[("tc_minus", "head"), "diff"] == pytest.approx(0.0)
    assert cell.loc[("tc_minus", "tail"), "n_pairs"] == 12  # 3 split seeds x 2 model seeds x 2 tail classes
    assert np.isnan(cell.loc[("tailedcore", "all"), "diff"])  # the reference is not compared with itself
    assert cell.loc[("tc_minus", "all"), "defect enrichment"] == 3.5 and cell.loc[("tc_minus", "all"), "fit s"] == 2.0
    assert cell.loc[("tc_minus", "head"), "p_value"] == 1.0  # no difference: nothing to tell apart
    text = ablation_markdown(table, dataset="d", reference="tailedcore", tails=["step_k1"])
    assert "| minus | 77.0 (-5.0 [-5.0, -5.0]" in text
    latex = ablation_latex(table, dataset="d", reference="tailedcore", tails=["step_k1"])
    assert latex.count(r"\begin{tabular}") == latex.count(r"\end{tabular}") == 1 and "minus & 77.0 & 82.0" in latex
