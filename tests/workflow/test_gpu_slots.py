"""One GPU per job, tested without a GPU: simulated devices (TAILEDCORE_FAKE_GPUS), real OS locks."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from workflow_copy import tiny_config

ROOT = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")

HOLDER = """
import json, os, sys, time
from pathlib import Path
from tailedcore.runtime.gpu import claim_gpu
go = os.environ.get("HOLDER_GO")  # say ready, then wait for this file: every holder has imported before any claims
if go:
    print(json.dumps({"ready": True}), flush=True)
while go and not Path(go).exists():
    time.sleep(0.01)
slot = claim_gpu(timeout=float(sys.argv[2]) if len(sys.argv) > 2 else None, poll_seconds=0.05)
start = time.time()
print(json.dumps({"index": slot.index, "visible": os.environ["CUDA_VISIBLE_DEVICES"], "start": start}), flush=True)
time.sleep(float(sys.argv[1]))
print(json.dumps({"end": time.time()}), flush=True)
"""


def _holder(tmp_path, seconds: float, env: dict, timeout: float | None = None) -> subprocess.Popen:
    args = [sys.executable, "-c", HOLDER, str(seconds)] + ([str(timeout)] if timeout is not None else [])
    environment = {**os.environ, "TAILEDCORE_GPU_LOCK_DIR": str(tmp_path / "locks"), **env}
    environment.pop("SLURM_JOB_ID", None)
    if "CUDA_VISIBLE_DEVICES" not in env:
        environment.pop("CUDA_VISIBLE_DEVICES", None)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment, cwd=ROOT)


def test_concurrent_jobs_never_share_a_device(tmp_path):
    devices = 3
    go = tmp_path / "go"
    env = {"TAILEDCORE_FAKE_GPUS": str(devices), "HOLDER_GO": str(go)}
    holders = [_holder(tmp_path, 0.4, env) for _ in range(2 * devices)]
    for holder in holders:  # python's start and the import, which a loaded machine (another test worker) stretches
        assert json.loads(holder.stdout.readline()) == {"ready": True}
    go.touch()
    intervals = []
    for holder in holders:
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err
        first, last = (json.loads(line) for line in out.splitlines())
        assert first["visible"] == first["index"]  # the job sees only its own device
        intervals.append((first["index"], first["start"], last["end"]))
    assert {index for index, _, _ in intervals} <= {str(i) for i in range(devices)}
    for i, (index, start, end) in enumerate(intervals):
        for other, other_start, other_end in intervals[i + 1 :]:
            if index == other:
                assert end <= other_start or other_end <= start, "two jobs held one device at once"
    # 6 jobs of 0.4 s on 3 devices: two rounds, not six
    assert max(end for _, _, end in intervals) - min(start for _, start, _ in intervals) < 6 * 0.4


def test_a_killed_holder_frees_its_device(tmp_path):
    env = {"TAILEDCORE_FAKE_GPUS": "1"}
    holder = _holder(tmp_path, 60, env)
    assert json.loads(holder.stdout.readline())["index"] == "0"
    blocked = _holder(tmp_path, 0, env, timeout=0.5)
    _, err = blocked.communicate(timeout=30)
    assert blocked.returncode != 0 and "no free GPU" in err
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.time()
    after = _holder(tmp_path, 0, env, timeout=5)
    out, err = after.communicate(timeout=30)
    assert after.returncode == 0, err
    assert json.loads(out.splitlines()[0])["index"] == "0" and time.time() - started < 5


def test_an_existing_visible_list_is_honoured(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "3,5"}
    first = _holder(tmp_path, 2, env)
    second = _holder(tmp_path, 2, env)
    got = sorted(json.loads(p.stdout.readline())["index"] for p in (first, second))
    assert got == ["3", "5"]
    for process in (first, second):
        process.communicate(timeout=30)


def test_slurm_assignment_is_used_as_is(monkeypatch):
    from tailedcore.runtime.gpu import claim_gpu

    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2")
    slot = claim_gpu()
    assert slot.index == "2" and "SLURM" in slot.how
    assert claim_gpu(wanted=False).index is None


def _log_times(path: Path) -> tuple[str, datetime, datetime]:
    text = path.read_text()
    stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)", text, flags=re.M)
    device = re.search(r"device slot: GPU (\d+)", text).group(1)
    parse = lambda s: datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return device, parse(stamps[0]), parse(stamps[-1])


@pytest.mark.slow
def test_two_gpu_jobs_run_at_once_on_distinct_devices(tmp_path):
    config = tiny_config({"run": ["patchcore", "padim"], "device": "auto", "padim": {"num_channels": 8}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "TAILEDCORE_FAKE_GPUS": "2", "TAILEDCORE_GPU_LOCK_DIR": str(tmp_path / "locks")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    targets = [f"results/tiny/scores/step_k1/seed1/model0/{m}.npz" for m in ("patchcore", "padim")]
    run = subprocess.run(
        [str(SNAKEMAKE), *targets, "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path)]
        + ["--configfile", "config.yaml", "--cores", "2", "--resources", "gpu=2"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    logs = tmp_path / "results" / "logs" / "fit_score" / "tiny" / "step_k1" / "seed1" / "model0"
    (dev_a, start_a, end_a), (dev_b, start_b, end_b) = (_log_times(logs / f"{m}.log") for m in ("patchcore", "padim"))
    assert start_a < end_b and start_b < end_a, "the two fit jobs did not run at once"
    assert dev_a != dev_b
    reports = [json.loads((tmp_path / t.replace(".npz", ".json")).read_text()) for t in targets]
    assert sorted(r["gpu"] for r in reports) == ["0", "1"]
