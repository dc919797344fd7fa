"""The SLURM command of docs/clusters.md, run word for word against a real single-node SLURM cluster on 127.0.0.1.

Selected with ``-m slurm``; skipped when the SLURM/munge packages are missing, unless
TAILEDCORE_REQUIRE_SLURM=1 (set by .ci/run, which installs them), where a missing cluster is a failure.
The command is taken from docs/clusters.md; only its placeholders are filled (partition, account, the
config file), and the test appends what a 2-core test node needs: 1 CPU and a little memory per job
(the profile asks for 8 CPUs and tens of GB) and fast status polling.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from slurm_cluster import SlurmCluster, missing_binaries
from workflow_copy import TWO_METHODS, copy_workflow, readme_block

SNAKEMAKE = Path(sys.executable).with_name("snakemake")
REQUIRED = os.environ.get("TAILEDCORE_REQUIRE_SLURM") == "1"

CONFIG = TWO_METHODS  # the config of the local run it is compared with (tests/conftest.py: finished_tiny_run)
TEST_NODE = [
    "--set-resources",
    "features:gpu=1",
    "features:cpus_per_task=1",
    "features:mem_mb=2000",
    "fit_score:gpu=1",
    "fit_score:cpus_per_task=1",
    "fit_score:mem_mb=3000",
    "--set-threads",
    "features=1",
    "fit_score=1",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "2",
]


def _skip_or_fail(reason: str):
    if REQUIRED:
        pytest.fail(reason + " (TAILEDCORE_REQUIRE_SLURM=1)")
    pytest.skip(reason)


@pytest.fixture
def cluster(tmp_path):
    missing = missing_binaries()
    if missing:
        _skip_or_fail(f"SLURM packages missing: {missing}; apt-get install slurmctld slurmd slurm-client munge")
    if os.geteuid() != 0:
        _skip_or_fail("starting slurmctld/slurmd/munged needs root")
    slurm = SlurmCluster(Path("/tmp") / f"tailedcore-slurm-{os.getpid()}")
    if not slurm.config_is_ours_or_absent():
        _skip_or_fail("/etc/slurm/slurm.conf belongs to someone else; not touching it")
    try:
        slurm.start()
        yield slurm
    finally:
        slurm.stop()


def _tables(folder: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_csv(p) for p in sorted((folder / "results" / "tables").glob("*auroc*.csv"))}


@pytest.mark.slurm
@pytest.mark.slow
def test_readme_slurm_command_runs_every_job_through_slurm(cluster, tmp_path, finished_tiny_run):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    command = readme_block("slurm-command").replace("\\\n", " ")
    command = (
        command.replace("PARTITION", "debug")
        .replace("ACCOUNT", "root")
        .replace("config/config.yaml", str(config))
        .replace(".venv/bin/snakemake", str(SNAKEMAKE))
    )
    on_slurm = copy_workflow(tmp_path / "cluster")
    run = subprocess.run(
        ["timeout", "-k", "10", "600", *shlex.split(command), *TEST_NODE], cwd=on_slurm, capture_output=True, text=True
    )
    assert run.returncode == 0, f"{run.stderr[-5000:]}\n{cluster.logs()}"

    # every job went through SLURM: one sbatch job and one slurm log per Snakemake job, all COMPLETED
    jobs = cluster.jobs()
    logs = list((on_slurm / ".snakemake" / "slurm_logs").rglob("*.log"))
    done = [line for line in run.stderr.splitlines() if "of" in line and "steps" in line and "done" in line]
    total = int(done[-1].split(" of ")[1].split()[0])  # "13 of 14 steps (93%) done": the last says all
    assert total >= 10
    assert len(jobs) == len(logs) == total - 1, (jobs, logs)  # all but the target rule `all` (local)
    assert {job["state"] for job in jobs} == {"COMPLETED"}
    assert {log.stem for log in logs} == {job["id"] for job in jobs}
    rules = {log.parent.parent.name for log in logs} | {log.parent.name for log in logs}
    assert any("fit_score" in name for name in rules) and any("features" in name for name in rules)

    # the same config run locally (once per test worker, shared with the tests that start from a finished run)
    # gives the same tables
    ours, reference = _tables(on_slurm), _tables(finished_tiny_run)
    assert set(ours) == set(reference) and len(ours) >= 4
    for name, table in ours.items():
        pd.testing.assert_frame_equal(table, reference[name], check_exact=False, atol=1e-9)
