"""End to end: Snakemake runs the whole chain on a tiny synthetic config in a temporary folder."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_copy import tiny_config

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

TINY = {
    **tiny_config({}),  # the tiny synthetic dataset and features, with two tails, two seeds and the sweep
    "splits": {"tails": ["step_k1", "pareto"], "seeds": [1, 2], "rules": {"tail_threshold": 6}},
    "sweep": {"datasets": ["tiny"], "noise_ratios": [0.0, 0.25], "tail": "step_k1", "seeds": [1]},
    "methods": {
        "run": ["patchcore", "softpatch", "tailedcore", "padim"],
        "threads": 1,
        "patchcore": {"coreset_ratio": 0.2},
        "tailedcore": {"tail_augmentation": "rotflip"},
        "padim": {"num_channels": 16},
    },
}


@pytest.mark.slow
def test_snakemake_end_to_end(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    command = [
        str(SNAKEMAKE),
        "-s",
        str(ROOT / "Snakefile"),
        "--directory",
        str(tmp_path),
        "--configfile",
        str(config),
        "--cores",
        "2",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-4000:]

    tables = tmp_path / "results" / "tables"
    image = pd.read_csv(tables / "tiny_image_auroc.csv", index_col="method")
    pixel = pd.read_csv(tables / "tiny_pixel_auroc.csv", index_col="method")
    expected = [f"{t}_{g}" for t in ("step_k1", "pareto") for g in ("tail", "head", "all")]
    for table in (image, pixel):
        assert list(table.index) == ["patchcore", "softpatch", "tailedcore", "padim"]
        assert list(table.columns) == expected
        assert ((table.values >= 0) & (table.values <= 100)).all()
    latex = (tables / "tiny_image_auroc.tex").read_text()
    assert r"\toprule" in latex and "patchcore" in latex
    per_seed = pd.read_csv(tables / "tiny_image_auroc_per_seed.csv")
    assert sorted(per_seed["seed"].unique()) == [1, 2]

    # the table equals the mean over seeds of the per-class metrics
    metrics = pd.concat(pd.read_csv(p) for p in (tmp_path / "results" / "tiny" / "metrics").rglob("*.csv"))
    step = metrics[
        (metrics["tail"] == "step_k1") & (metrics["metric"] == "image_auroc") & (metrics["method"] == "patchcore")
    ]
    assert image.loc["patchcore", "step_k1_all"] == pytest.approx(
        100 * step.groupby("seed")["value"].mean().mean(), abs=0.006
    )

    # the score-file contract: one image score and one patch map per test image
    manifest = pd.read_csv(tmp_path / "results" / "tiny" / "splits" / "step_k1" / "seed1.csv")
    with np.load(tmp_path / "results" / "tiny" / "scores" / "step_k1" / "seed1" / "model0" / "patchcore.npz") as scores:
        assert sorted(scores["image_ids"]) == sorted(manifest.loc[manifest["subset"] == "test", "image_id"])
        assert scores["patch_scores"].shape == (len(scores["image_ids"]), 6, 6)

    # each number says how it was made: the TailedCore report holds its options and its tail estimate
    report = json.loads(
        (tmp_path / "results" / "tiny" / "scores" / "step_k1" / "seed1" / "model0" / "tailedcore.json").read_text()
    )
    assert report["options"]["tail_augmentation"] == "rotflip" and "tail_recall" in report

    # figures for every tail type, as PNG and SVG, and the HTML report that registers them with the tables
    figures = tmp_path / "results" / "figures" / "tiny"
    for kind in ("per_class", "anomaly_maps", "tail_sampler"):
        for tail in ("step_k1", "pareto"):
            assert (figures / f"{kind}_{tail}.png").stat().st_size > 1000
            assert (figures / f"{kind}_{tail}.svg").read_text().startswith("<?xml")
    # two tables (mean [interval], then the spreads over split / model seeds), each a header row + 4 methods
    assert (tables / "tiny_image_auroc.md").read_text().count("\n| ") == 10
    report = subprocess.run(
        command[:-2] + ["--report", str(tmp_path / "report.html")], capture_output=True, text=True, timeout=300
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "report.html").stat().st_size > 10000

    # the noise-ratio sweep: every method at every ratio, on the dataset's own feature cache
    sweep = pd.read_csv(tables / "tiny_noise_sweep.csv")
    assert sorted(sweep["noise_ratio"].unique()) == [0.0, 0.25]
    assert set(sweep["method"]) == {"patchcore", "softpatch", "tailedcore", "padim"}
    assert (figures / "noise_sweep.png").stat().st_size > 1000
    # ... and what the memory banks keep at each ratio: no defect patches without noise
    kept = pd.read_csv(tables / "tiny_noise_sweep_diagnostics.csv")
    assert set(kept["quantity"]) == {"enrichment"} and set(kept["method"]) == {"patchcore", "softpatch", "tailedcore"}
    assert sorted(kept.loc[kept["subset"] == "defect", "noise_ratio"].unique()) == [0.25]
    assert sorted(kept.loc[kept["subset"] == "clean", "noise_ratio"].unique()) == [0.0, 0.25]
    assert (figures / "noise_sweep_diagnostics.png").stat().st_size > 1000
    noise = pd.read_csv(tmp_path / "results" / "tiny_nr0250" / "splits" / "step_k1" / "seed1.stats.csv")
    assert noise["n_train_noise"].sum() > 0
    assert not (tmp_path / "results" / "tiny_nr0250" / "features").exists()

    # features are computed once per category, not per run
    assert len(list((tmp_path / "results" / "tiny" / "features").rglob("*.patches.npy"))) == 3

    # TailedCore's parts as ablations: two variants added later fit on their own, reuse the fits' shared steps,
    # leave every existing fit alone and get the ablation table against the full TailedCore
    scores = tmp_path / "results" / "tiny" / "scores" / "step_k1" / "seed1" / "model0"
    before = {p.name: p.stat().st_mtime_ns for p in scores.glob("*.npz")}
    overlay = tmp_path / "ablation.yaml"
    variants = {
        "tc_no_tail": {"of": "tailedcore", "label": "w/o TailSampler", "tail_mode": "none"},
        "tc_filtered": {"of": "tailedcore", "tail_filter": True, "tail_augmentation": "none"},
    }
    overlay.write_text(
        yaml.safe_dump({"methods": {"run": TINY["methods"]["run"] + list(variants), "variants": variants}})
    )
    ablation = subprocess.run(
        command[:-2] + [str(overlay), "--cores", "2"], capture_output=True, text=True, timeout=900
    )
    assert ablation.returncode == 0, ablation.stderr[-4000:]
    assert all((scores / name).stat().st_mtime_ns == mtime for name, mtime in before.items())  # no refit
    table = pd.read_csv(tables / "tiny_ablation.csv")
    assert list(dict.fromkeys(table["method"])) == ["tailedcore", "tc_no_tail", "tc_filtered"]
    assert (
        set(table["metric"]) == {"image_auroc", "pixel_auroc"}
        and table.loc[table["method"] != "tailedcore", "n_pairs"].min() > 0
    )
    assert table.loc[table["method"] == "tc_no_tail", "label"].iloc[0] == "w/o TailSampler"
    assert r"\begin{tabular}" in (tables / "tiny_ablation.tex").read_text()
    variant = json.loads((scores / "tc_no_tail.json").read_text())
    assert variant["implementation"] == "tailedcore" and variant["options"]["tail_mode"] == "none"
    assert "filter" in variant["cost"]["reused_parts"] and "tail_memory_size" not in variant
    image = pd.read_csv(tables / "tiny_image_auroc.csv", index_col="method")  # the variants are rows of their own
    assert list(image.index) == TINY["methods"]["run"] + list(variants)
    image = image.loc[TINY["methods"]["run"]]

    # a results tree can be moved: paths inside the working directory are stored relative to it
    index = pd.read_csv(tmp_path / "results" / "tiny" / "index.csv")
    assert not index["image_path"].str.startswith("/").any()
    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    tmp_path.rename(moved)
    try:
        config = moved / "tiny.yaml"
        rerun = subprocess.run(
            [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(moved), "--configfile", str(config)]
            + ["--cores", "2", "--forcerun", "tables", "figures"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        again = pd.read_csv(moved / "results" / "tables" / "tiny_image_auroc.csv", index_col="method")
        pd.testing.assert_frame_equal(again, image)
    finally:
        moved.rename(tmp_path)


def _snakemake(*args, cwd=ROOT):
    return subprocess.run([str(SNAKEMAKE), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_paper_config_plans_from_downloads_to_tables(tmp_path):
    run = _snakemake(
        "-n", "--configfile", "config/config.yaml", "--directory", str(tmp_path), "-s", str(ROOT / "Snakefile")
    )
    assert run.returncode == 0, run.stderr[-3000:]
    jobs = dict(re.findall(r"^([a-z_]+)\s+(\d+)$", run.stdout, flags=re.M))
    assert jobs["download"] == jobs["extract"] == jobs["index"] == jobs["tables"] == "2"
    assert jobs["official_manifest"] == "60"  # the paper's own splits: 2 files x 30 (dataset, tail, seed)
    assert jobs["split"] == "30"  # 2 datasets x 3 tails x 5 seeds
    assert jobs["fit_score"] == "120"  # x 4 methods
    assert jobs["evaluate"] == "30"  # one per run, every method at once
    assert jobs["features"] == "27"  # one per category: 15 MVTec AD + 12 VisA


def test_lint_finds_no_rule_without_a_log():
    run = _snakemake("--lint", "--configfile", "config/quickstart.yaml")
    report = run.stdout + run.stderr
    assert run.returncode == 0 or "Lints for rule" in report, report[-3000:]  # it exits 1 on any lint
    assert "log directive" not in report.lower()


def test_local_gpu_profile_plans_the_quickstart(tmp_path):
    """profiles/local (one GPU box) is a valid profile: it plans the whole quickstart."""
    run = _snakemake(
        "-n",
        "--workflow-profile",
        str(ROOT / "profiles" / "local"),
        "--configfile",
        str(ROOT / "config" / "quickstart.yaml"),
        "--directory",
        str(tmp_path),
        "-s",
        str(ROOT / "Snakefile"),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Using workflow specific profile" in run.stdout + run.stderr
    assert re.search(r"^fit_score\s+32$", run.stdout, flags=re.M)  # 4 methods x 2 tails x 2 split x 2 model seeds
