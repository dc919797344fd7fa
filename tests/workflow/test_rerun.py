"""Rerun triggers: knobs that only choose where or how fast plan nothing; a knob that changes numbers plans
exactly the jobs whose outputs it changes."""

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from workflow_copy import TWO_METHODS, copy_run

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def _run(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "-d", str(workdir), "--configfile", str(path)]
    return subprocess.run([*command, "--cores", "2", *extra], capture_output=True, text=True, timeout=900)


def _planned(workdir: Path, config: dict) -> dict[str, int]:
    run = _run(workdir, config, "-n")
    assert run.returncode == 0, run.stderr[-3000:]
    return {name: int(count) for name, count in re.findall(r"^([a-z_]+)\s+(\d+)$", run.stdout, flags=re.M)}


@pytest.mark.slow
def test_runtime_knobs_plan_nothing_and_number_knobs_plan_exactly_what_they_change(tmp_path, finished_tiny_run):
    config = copy.deepcopy(TWO_METHODS)
    run = _run(copy_run(finished_tiny_run, tmp_path), config)  # a complete run, copied: nothing left to do
    assert run.returncode == 0, run.stderr[-3000:]
    assert _planned(tmp_path, config) == {}

    for block, key, value in [
        ("features", "threads", 2),
        ("features", "batch_size", 3),
        ("features", "device", "auto"),
        ("methods", "threads", 2),
        ("methods", "device", "auto"),
    ]:
        changed = copy.deepcopy(config)
        changed[block][key] = value
        assert _planned(tmp_path, changed) == {}, f"{block}.{key} is a runtime knob: it must not rerun anything"

    changed = copy.deepcopy(config)
    changed["methods"]["patchcore"] = {"coreset_ratio": 0.2}
    jobs = _planned(tmp_path, changed)
    assert jobs.pop("total") == sum(jobs.values())
    assert jobs == {
        "check_dataset": 1,  # its time estimate depends on the coreset ratio (a few seconds, nothing after it)
        "fit_score": 1,  # patchcore only; padim and every feature cache and split stay
        "evaluate": 1,
        "diagnose": 1,  # patchcore's memory bank changes
        "diagnostics_table": 1,
        "tables": 1,
        "pixel_table": 1,
        "figures": 1,
        "runtime_table": 1,
        "cost_table": 1,  # the fit's cost beside its AUROC
        "all": 1,
    }

    changed = copy.deepcopy(config)
    changed["methods"]["seeds"] = [0, 1]  # a new model seed: only its fits and their evaluation
    jobs = _planned(tmp_path, changed)
    assert jobs["fit_score"] == 2 and jobs["evaluate"] == 1, jobs
    assert not {"features", "split", "index", "coverage", "index_category"} & set(jobs), jobs

    changed = copy.deepcopy(config)
    changed["splits"]["seeds"] = [1, 2]  # a new split seed: its split and fits, nothing cached is redone
    jobs = _planned(tmp_path, changed)
    assert jobs["split"] == 1 and jobs["fit_score"] == 2 and jobs["evaluate"] == 1
    assert "features" not in jobs and "index" not in jobs and "coverage" not in jobs

    # a split setting (noise ratio, split rules, tails) redraws the splits and what follows, never the index,
    # the coverage or a feature cache
    after_split = {"check_dataset", "split", "patch_truth", "fit_score", "evaluate", "diagnose", "diagnostics_table"}
    after_split |= {"tables", "pixel_table", "figures", "runtime_table", "cost_table", "all"}
    for change in (
        lambda c: c["datasets"]["tiny"].update(noise_ratio=0.2),
        lambda c: c["splits"].setdefault("rules", {}).update(tail_threshold=5),
    ):
        changed = copy.deepcopy(config)
        change(changed)
        jobs = _planned(tmp_path, changed)
        jobs.pop("total")
        assert set(jobs) == after_split, jobs
    changed = copy.deepcopy(config)
    changed["splits"]["tails"] = [*config["splits"]["tails"], "step_k4"]  # a new tail: its own split and fits
    jobs = _planned(tmp_path, changed)
    assert jobs["split"] == 1 and not {"index_category", "index", "coverage", "features"} & set(jobs), jobs
    # a feature setting: the feature caches and everything after them, not the index or the coverage
    changed = copy.deepcopy(config)
    changed["features"]["patch_size"] = 5
    jobs = _planned(tmp_path, changed)
    assert jobs["features"] == len(config["datasets"]["tiny"]["categories"]), jobs
    assert not {"index_category", "index", "coverage", "split"} & set(jobs), jobs

    # the diagnostics are computed from files: wiped (or changed), they come back without refitting anything
    shutil.rmtree(tmp_path / "results" / "tiny" / "diagnostics")
    (tmp_path / "results" / "tables" / "tiny_diagnostics.csv").unlink()
    jobs = _planned(tmp_path, config)
    assert jobs["patch_truth"] == 1 and jobs["diagnose"] == 1 and jobs["diagnostics_table"] == 1, jobs
    assert not {"fit_score", "features", "split", "evaluate"} & set(jobs), jobs
