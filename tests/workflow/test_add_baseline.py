"""The "Adding a baseline" example of docs/baselines.md, run as written: a rule file plus one config line, and the new
method appears in every table and figure."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from workflow_copy import copy_workflow, readme_block, tiny_config

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
BASE = tiny_config({"tailedcore": {"tail_augmentation": "rotflip"}, "padim": {"num_channels": 16}})


@pytest.mark.slow
def test_readme_baseline_rule_reaches_tables_and_figures(tmp_path):
    workflow = copy_workflow(tmp_path / "workflow")
    (workflow / "rules" / "baselines" / "global_knn.smk").write_text(readme_block("baseline-rule"))
    config = dict(BASE)
    config["methods"] = {**BASE["methods"], **yaml.safe_load(readme_block("baseline-config"))["methods"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [str(SNAKEMAKE), "--cores", "2", "--configfile", str(tmp_path / "config.yaml")],
        cwd=workflow,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-4000:]

    tables = workflow / "results" / "tables"
    for name in ("tiny_image_auroc.csv", "tiny_pixel_auroc.csv"):
        table = pd.read_csv(tables / name, index_col="method")
        assert list(table.index) == ["patchcore", "softpatch", "tailedcore", "padim", "global_knn"]
        assert table.loc["global_knn"].between(0, 100).all()
    assert "global\\_knn" in (tables / "tiny_image_auroc.tex").read_text()
    runtime = pd.read_csv(tables / "tiny_runtime.csv")
    assert "global_knn" in set(runtime.astype(str).values.ravel())
    # its scores are a real (if weak) method's: distances to the nearest training embedding
    with np.load(
        workflow / "results" / "tiny" / "scores" / "step_k1" / "seed1" / "model0" / "global_knn.npz"
    ) as scores:
        assert scores["image_scores"].std() > 0
        assert np.allclose(scores["patch_scores"].max(axis=(1, 2)), scores["image_scores"])
    assert (workflow / "results" / "figures" / "tiny" / "per_class_step_k1.png").stat().st_size > 1000
    # a method without a provenance file keeps its tables and has no diagnostics rows; PaDiM has no memory bank
    diagnostics = pd.read_csv(tables / "tiny_diagnostics.csv")
    assert set(diagnostics["method"]) == {"patchcore", "softpatch", "tailedcore"}
    defects = diagnostics[(diagnostics["quantity"] == "pool_share") & (diagnostics["subset"] == "defect")]
    assert len(defects) and (defects["mean"] > 0).all()  # injected noise with masks: defect patches in the pool
    # class by class: every category's AUROC for every method, its bank composition where the method has a bank
    per_category = pd.read_csv(tables / "tiny_diagnostics_per_category.csv")
    assert set(per_category["method"]) == {"patchcore", "softpatch", "tailedcore", "padim", "global_knn"}
    assert set(per_category["category"]) == set(pd.read_csv(workflow / "results" / "tiny" / "index.csv")["category"])
    banked = per_category["method"].isin(["patchcore", "softpatch", "tailedcore"])
    assert per_category["image AUROC (%)"].notna().all() and per_category.loc[banked, "clean enrichment"].notna().all()
    assert per_category.loc[~banked, "clean enrichment"].isna().all()
    assert (workflow / "results" / "figures" / "tiny" / "diagnostics.png").stat().st_size > 1000


def test_an_unknown_method_name_is_a_clear_error(tmp_path):
    config = dict(BASE)
    config["methods"] = {**BASE["methods"], "run": ["patchcore", "global_knnn"]}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [
            str(SNAKEMAKE),
            "-n",
            "--configfile",
            str(tmp_path / "config.yaml"),
            "--directory",
            str(tmp_path),
            "-s",
            str(Path(__file__).resolve().parents[2] / "Snakefile"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode != 0
    message = run.stdout + run.stderr
    assert "global_knnn" in message and "rules/baselines/global_knnn.smk" in message
