"""A new user's first hour: what goes wrong is said on the terminal, old config keys say what to write now,
and a wiped results folder never makes the workflow prepare a dataset again."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from real_fixtures import damage, write_real_folder
from workflow_copy import TINY_FEATURES, tiny_config

from tailedcore.runtime.config import schema_problems

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def snakemake(workdir: Path, config: dict, *extra: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    command = [str(SNAKEMAKE), "-s", str(ROOT / "Snakefile"), "--directory", str(workdir)]
    command += ["--configfile", str(workdir / "config.yaml"), "--cores", "2", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize(
    "methods, expected",
    [
        ({"seed": 0}, "methods.seed is no longer a key: write methods.seeds: [0]"),
        ({"seed": [3]}, "write methods.seeds: [3]"),
        ({"seeed": 3}, "unknown key methods.seeed (did you mean 'seeds'?)"),
    ],
)
def test_an_old_or_misspelt_methods_key_says_what_to_write(methods, expected):
    config = yaml.safe_load((ROOT / "config" / "quickstart.yaml").read_text())
    config["methods"].pop("seeds", None)
    config["methods"].update(methods)
    problems = schema_problems(config, SCHEMA)
    assert len(problems) == 1 and expected in problems[0], problems
    assert "is not of type 'object'" not in problems[0]


@pytest.mark.slow
def test_a_failing_job_says_why_on_the_terminal(tmp_path):
    """The careful message of a job (here: the folder's unreadable image, wrong-sized mask and missing mask,
    all at once) appears in Snakemake's own output, not only inside the job's log."""
    data = write_real_folder(tmp_path / "data")
    offenders = damage(data)
    config = {
        "datasets": {
            "real": {"kind": "folder", "path": str(data), "categories": ["photo", "strip"], "noise_ratio": 0.25}
        },
        "splits": {"source": "generated", "tails": ["step_k1"], "seeds": [1], "rules": {"tail_threshold": 6}},
        "features": dict(TINY_FEATURES),
        "methods": {"run": ["patchcore"], "threads": 1},
    }
    result = snakemake(tmp_path / "work", config)
    assert result.returncode != 0
    terminal = result.stdout + result.stderr
    assert "Error in rule check_dataset: DatasetLayoutError: 3 problem(s) in dataset real" in terminal, terminal[-4000:]
    message = terminal.split("Error in rule check_dataset:")[1]
    for offender in offenders:
        assert offender in message, f"{offender} not on the terminal:\n{terminal[-4000:]}"
    assert "Traceback (most recent call last)" not in message[:2000]


@pytest.mark.slow
def test_a_wiped_results_folder_never_prepares_a_dataset_again(tmp_path):
    config = tiny_config({})
    config["methods"]["run"] = ["patchcore"]
    work = tmp_path / "work"
    marker = "resources/datasets/tiny.ready.json"
    first = snakemake(work, config, marker)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (work / marker).is_file()
    shutil.rmtree(work / "results", ignore_errors=True)
    dry = snakemake(work, config, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = dict(re.findall(r"^([a-z_]+)\s+(\d+)$", dry.stdout, flags=re.M))
    assert "synthetic_dataset" not in jobs and "index_category" in jobs, dry.stdout[-3000:]


def test_check_lists_every_problem_of_every_category_and_split_at_once(tmp_path):
    """Three kinds of damage in two categories, one of them without train/good/ (which used to hide its other
    problems), and a step K the smaller class cannot be a tail of: one error, every offender, a report file."""
    import json

    from tailedcore.data.index import DatasetLayoutError
    from tailedcore.stages.data import check_dataset

    data = write_real_folder(tmp_path / "data")
    offenders = damage(data)  # strip: a wrong-sized mask; photo: an unreadable image, a missing mask
    shutil.rmtree(data / "photo" / "train" / "good")
    marker = tmp_path / "ready.json"
    marker.write_text(json.dumps({"root": str(data)}))
    splits = {"source": "generated", "tails": ["step_k8"], "seeds": [1], "rules": {"tail_threshold": 6}}
    output = tmp_path / "check.md"
    block = {"kind": "folder", "path": str(data), "categories": ["photo", "strip"], "noise_ratio": 0.1}
    with pytest.raises(DatasetLayoutError) as caught:
        check_dataset(
            block=block, marker=marker, dataset="real", categories=["photo", "strip"], splits=splits, output=output
        )
    text = str(caught.value)
    assert offenders[0] in text  # the wrong-sized mask of strip
    assert "p02" in text and "photo/train/good is missing" in text  # photo's test side is still checked
    assert (
        "the splits are checked once every category has its train/good/ folder"
        in (tmp_path / "check_problems.md").read_text()
    )
    (data / "photo" / "train" / "good").mkdir()
    for i in range(8):
        shutil.copy(data / "photo" / "test" / "good" / "p00.JPG", data / "photo" / "train" / "good" / f"n{i}.JPG")
    with pytest.raises(DatasetLayoutError) as caught:
        check_dataset(
            block=block, marker=marker, dataset="real", categories=["photo", "strip"], splits=splits, output=output
        )
    text = str(caught.value)
    assert "K = 8 keeps all of them" in text and "p02" in text and offenders[0] in text
    assert not output.exists() and str(output.with_name("check_problems.md")) in text
    assert (tmp_path / "check_problems.md").read_text().count("\n- ") >= 4


@pytest.mark.slow
def test_check_prints_the_time_of_the_planned_run_before_it_is_spent(tmp_path):
    config = tiny_config({})
    config["methods"]["run"] = ["patchcore", "softpatch"]
    config["methods"]["threads"] = 2
    result = snakemake(tmp_path / "work", config, "check")
    assert result.returncode == 0, result.stderr[-3000:]
    terminal = result.stdout + result.stderr
    assert "Estimated time of tiny on this machine" in terminal and "What would cut it most:" in terminal
    # the job that measures the rates holds a fit's threads: no coverage job beside it slows the measurement
    job = terminal[terminal.index("rule check_dataset:") :].split("\n\n", 1)[0]
    assert re.search(r"^\s+threads: 2$", job, re.M), job
    report = (tmp_path / "work" / "results" / "tiny" / "check.md").read_text()
    assert "2 fits" in report and "patchcore" in report  # 1 split x 1 model seed x 2 methods
    assert not (tmp_path / "work" / "results" / "tiny" / "features").exists()  # nothing heavy ran
