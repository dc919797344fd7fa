"""The recovery commands of docs/recovery.md, run as written: each case is made to happen (SIGTERM, SIGKILL, a deleted
intermediate, a damaged file), Snakemake's own words are checked, then the page's one command line (with
the test's config in place of the quickstart's) must bring the run to complete, identical tables."""

import filecmp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from workflow_copy import TWO_METHODS, copy_run, doc_with_marker, readme_block

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
FEATURE = "results/tiny/features/efficientnet_lite0/fabric.patches.npy"


def command(line: str, config: Path) -> str:
    """A docs/recovery.md command for this test's workflow: its config, its dataset, the checkout's Snakefile."""
    line = line.strip().replace("config/quickstart.yaml", str(config)).replace("results/synthetic/", "results/tiny/")
    return line.replace("snakemake ", f"{SNAKEMAKE} -s {ROOT / 'Snakefile'} ")


def run(line: str, work: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", line], cwd=work, capture_output=True, text=True, timeout=900)


@pytest.fixture
def setup(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(TWO_METHODS))
    work = tmp_path / "work"
    work.mkdir()
    return path, work


def complete(path: Path, work: Path) -> None:
    done = run(command(readme_block("recover-sigterm"), path), work)
    assert done.returncode == 0, done.stderr[-3000:]


def started_and_stopped(path: Path, work: Path, sig: int) -> str:
    """Start the run, wait until a feature job has finished, send ``sig`` to Snakemake; its output."""
    process = subprocess.Popen(
        ["bash", "-c", "exec " + command(readme_block("recover-sigterm"), path)],
        cwd=work,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (work / FEATURE).exists():
        time.sleep(0.5)
    assert (work / FEATURE).exists(), "no feature job finished in time"
    time.sleep(1.0)
    os.killpg(process.pid, sig) if sig == signal.SIGKILL else process.send_signal(sig)
    output, _ = process.communicate(timeout=300)
    return output


@pytest.mark.slow
def test_after_sigterm_the_same_command_completes_the_run(setup):
    path, work = setup
    output = started_and_stopped(path, work, signal.SIGTERM)
    assert "At least one job did not complete successfully" in output or "Terminating" in output, output[-3000:]
    complete(path, work)
    assert (work / "results" / "tables" / "tiny_image_auroc.csv").is_file()


def readme_block_text(marker: str) -> str:
    """The paragraph of docs/recovery.md that introduces the command block after ``<!-- marker -->``."""
    text = doc_with_marker(marker)
    return text[: text.index(f"<!-- {marker} -->")].rstrip().rsplit("\n\n", 1)[-1]


@pytest.mark.slow
def test_after_sigkill_unlock_and_rerun_incomplete_complete_the_run(setup):
    path, work = setup
    started_and_stopped(path, work, signal.SIGKILL)
    again = run(command(readme_block("recover-sigterm"), path), work)
    assert again.returncode != 0
    said = again.stdout + again.stderr
    # what Snakemake prints first is one of the two docs/recovery.md names (here the incomplete files; when a
    # killed run's lock is still held, the lock)
    first = min((said.find(m), m) for m in ("IncompleteFilesException", "LockException") if m in said)[1]
    assert first in readme_block_text("recover-sigkill"), said[-3000:]
    fixed = run(command(readme_block("recover-sigkill"), path), work)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert (work / "results" / "tables" / "tiny_image_auroc.csv").is_file()


@pytest.mark.slow
def test_a_deleted_intermediate_comes_back_by_naming_it_first(setup, tmp_path, finished_tiny_run):
    path, work = setup
    copy_run(finished_tiny_run, work)  # a complete run of this config, which Snakemake takes as complete
    assert "Nothing to be done" in run(command(readme_block("recover-sigterm"), path), work).stderr
    before = tmp_path / "before.npy"
    before.write_bytes((work / FEATURE).read_bytes())
    (work / FEATURE).unlink()
    plain = run(command(readme_block("recover-sigterm"), path), work)
    assert plain.returncode == 0 and not (work / FEATURE).exists()  # a plain rerun does not bring it back
    back = run(command(readme_block("recover-deleted"), path), work)
    assert back.returncode == 0, back.stderr[-3000:]
    assert filecmp.cmp(work / FEATURE, before, shallow=False)


@pytest.mark.slow
def test_a_damaged_file_names_itself_and_the_printed_command_repairs_the_run(setup, tmp_path, finished_tiny_run):
    path, work = setup
    copy_run(finished_tiny_run, work)  # a complete run of this config
    tables = work / "results" / "tables"
    image = (tables / "tiny_image_auroc.csv").read_text()
    data = (work / FEATURE).read_bytes()
    (work / FEATURE).write_bytes(data[: len(data) // 2])
    (work / "results" / "tiny" / "scores" / "step_k1" / "seed1" / "model0" / "patchcore.npz").unlink()
    failed = run(command(readme_block("recover-sigterm"), path), work)
    assert failed.returncode != 0
    said = failed.stdout + failed.stderr
    assert f"DamagedFileError: {FEATURE} (patch feature cache) is damaged or truncated" in said, said[-3000:]
    printed = f"snakemake --forcerun {FEATURE} --cores all --configfile {path.resolve()}"
    assert printed in said  # the job's own message holds the exact command, config included
    fixed = run(command(readme_block("recover-damaged"), path), work)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert (tables / "tiny_image_auroc.csv").read_text() == image
