import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from workflow_copy import TWO_METHODS

from tailedcore.data.synthetic import SyntheticSpec, write_dataset

ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config):
    """The suite's own cache of machine measurements (kNN backend choice, cost model), shared by its workers and
    the Snakemake runs they start, removed at the end: calibrations taken under the suite's load are slow (2x
    measured) and must never land in the user's ~/.cache/tailedcore, where ``check`` would keep using them."""
    if hasattr(config, "workerinput"):  # an xdist worker: the controller set it, the environment carried it
        return
    config._tailedcore_cache = tempfile.mkdtemp(prefix="tailedcore-test-cache-")
    os.environ["TAILEDCORE_CACHE"] = config._tailedcore_cache


def pytest_unconfigure(config):
    folder = getattr(config, "_tailedcore_cache", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """A small synthetic MVTec-layout dataset (3 categories, 48 px) shared by the tests."""
    root = tmp_path_factory.mktemp("synthetic")
    spec = SyntheticSpec(
        seed=3,
        image_size=48,
        n_train=6,
        n_test_good=2,
        n_test_defect_per_type=1,
        categories=("fabric", "washer", "chip"),
    )
    write_dataset(root, spec)
    return root, spec


@pytest.fixture(scope="session")
def finished_tiny_run(tmp_path_factory):
    """The two-method tiny chain (``TWO_METHODS``) run to completion once per test worker: tests that start from a
    complete run copy it (``copy_run``) rather than each running the same chain again (a minute apiece)."""
    work = tmp_path_factory.mktemp("finished_tiny_run")
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump(TWO_METHODS))
    snakemake = Path(sys.executable).with_name("snakemake")
    command = [str(snakemake), "-s", str(ROOT / "Snakefile"), "-d", str(work), "--configfile", str(config)]
    run = subprocess.run([*command, "--cores", "2"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    return work


# The two longest tests (5.5 min each on 2 cores, measured with --durations): they start first, on different workers.
LONGEST = ("test_readme_slurm_command_runs_every_job_through_slurm", "test_snakemake_end_to_end")


def pytest_collection_modifyitems(config, items):
    """The longest tests first, then the other slow ones, then the rest (a stable sort: within each group the
    files' order). pytest-xdist hands tests out in this order, one at a time (``--maxschedchunk 1`` in
    pyproject.toml), so the minute-long Snakemake runs start at once on every worker and short tests fill the
    end, instead of one worker running every slow test while the other sits idle."""

    def group(item) -> int:
        if item.originalname in LONGEST:
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=group)
    longest = [i for i, item in enumerate(items) if item.originalname in LONGEST]
    if len(longest) == 2 and len(items) > 2:  # xdist's first hand-out is two tests per worker: 1st and 3rd apart
        items.insert(2, items.pop(longest[1]))
