"""The conda environment lists exactly the package's dependencies, each pinned to a version pyproject allows."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_conda_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {Requirement(r).name.lower(): Requirement(r) for r in project["dependencies"]}
    environment = yaml.safe_load((ROOT / "envs" / "tailedcore.yaml").read_text())
    pip_block = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    pinned = {}
    for line in pip_block:
        name, version = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.+]*)", line).groups()
        pinned[name.lower()] = version
    assert set(pinned) == set(wanted)
    for name, version in pinned.items():
        assert wanted[name].specifier.contains(version), f"{name}=={version} violates {wanted[name]}"


def _pins(name: str) -> dict[str, str]:
    environment = yaml.safe_load((ROOT / "envs" / name).read_text())
    pip_block = next(d["pip"] for d in environment["dependencies"] if isinstance(d, dict))
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line).groups() for line in pip_block)


def test_the_gpu_environment_swaps_faiss_cpu_for_the_same_faiss_gpu_and_nothing_else():
    cpu, gpu = _pins("tailedcore.yaml"), _pins("tailedcore-gpu.yaml")
    assert "faiss-cpu" not in gpu and "faiss-gpu" not in cpu  # one build of the import name `faiss` each
    assert gpu.pop("faiss-gpu") == cpu.pop("faiss-cpu")
    assert gpu == cpu
    script = (ROOT / "envs" / "install-faiss-gpu.sh").read_text()
    assert f"VERSION={_pins('tailedcore-gpu.yaml')['faiss-gpu']}" in script
    assert script.index("pip uninstall -y faiss-cpu") < script.index('pip install "faiss-gpu==$VERSION"')


def test_rules_take_the_gpu_environment_when_a_block_may_use_the_gpu():
    from tailedcore.plan.workflow import conda_env_file

    def config(features, methods):
        return {"features": {"device": features}, "methods": {"device": methods}}

    assert conda_env_file(config("cpu", "cpu")) == "tailedcore.yaml"
    assert conda_env_file(config("cpu", "auto")) == "tailedcore-gpu.yaml"
    assert conda_env_file(config("cuda", "cpu")) == "tailedcore-gpu.yaml"


@pytest.mark.slow
def test_the_faiss_gpu_install_resolves_from_the_registry():
    """What can be checked without a GPU: the pinned faiss-gpu wheel exists for this platform and Python."""
    run = subprocess.run(
        ["bash", str(ROOT / "envs" / "install-faiss-gpu.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PY": sys.executable},
    )
    assert run.returncode == 0, run.stderr[-2000:]
