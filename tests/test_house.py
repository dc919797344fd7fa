"""The house: docs generated from the schema, defaults that agree, calls that read, a wheel that works, and
no citation of a file outside the repository."""

import ast
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from tailedcore.configdoc import render

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_config_readme_is_generated_from_the_schema():
    assert (ROOT / "config" / "README.md").read_text() == render(), (
        "config/README.md is stale: python -m tailedcore.configdoc > config/README.md"
    )


def _defaults(node: dict) -> dict:
    defs = SCHEMA["$defs"]
    out = {}
    for name, value in node["properties"].items():
        if "$ref" in value:
            value = {**defs[value["$ref"].rsplit("/", 1)[-1]], **value}
        if "default" in value:
            out[name] = value["default"]
    return out


def _check(config_class, node: dict, skip: tuple[str, ...] = ()):
    defaults = _defaults(node)
    compared = 0
    for field in fields(config_class):
        if field.name in defaults and field.name not in skip:
            expected = field.default
            assert (
                defaults[field.name] == pytest.approx(expected)
                if isinstance(expected, float)
                else (defaults[field.name] == expected)
            ), f"{config_class.__name__}.{field.name}: schema {defaults[field.name]!r}, dataclass {expected!r}"
            compared += 1
    assert compared, config_class.__name__


def test_schema_defaults_equal_the_dataclass_defaults():
    from tailedcore.data.elpv import ElpvSpec
    from tailedcore.data.synthetic import SyntheticSpec
    from tailedcore.features.cache import FeatureConfig
    from tailedcore.methods.padim import PaDiMConfig
    from tailedcore.methods.patchcore import PatchCoreConfig
    from tailedcore.methods.softpatch import SoftPatchConfig
    from tailedcore.methods.tailedcore import TailedCoreConfig
    from tailedcore.splits import SplitRules

    props = SCHEMA["properties"]
    dataset = props["datasets"]["additionalProperties"]["properties"]
    _check(FeatureConfig, props["features"], skip=("backbone",))  # the schema leaves the backbone to each config
    _check(PatchCoreConfig, props["methods"]["properties"]["patchcore"])
    _check(SoftPatchConfig, props["methods"]["properties"]["softpatch"])
    _check(TailedCoreConfig, props["methods"]["properties"]["tailedcore"], skip=("tail_augmentation",))
    _check(PaDiMConfig, props["methods"]["properties"]["padim"])
    _check(SplitRules, props["splits"]["properties"]["rules"])
    _check(SyntheticSpec, dataset["synthetic"])
    _check(ElpvSpec, dataset["elpv"])


def test_no_call_passes_more_than_five_positional_arguments():
    offenders = []
    for folder in ("tailedcore", "workflow/scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Call):
                    count = sum(not isinstance(arg, ast.Starred) for arg in node.args)
                    if count > 5:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}")
    assert not offenders, offenders


def test_nothing_cites_a_file_outside_the_repository():
    pattern = re.compile(r"spec §|ARCHITECTURE\.md|\.\./shared|tailedcore_spec")
    offenders = []
    for path in ROOT.rglob("*"):
        if any(part in (".venv", ".git", "results", "resources", ".snakemake") for part in path.parts):
            continue
        if path.suffix in (".py", ".smk", ".yaml", ".md", ".rst", ".sh") or path.name == "Snakefile":
            if path.is_file() and pattern.search(path.read_text(errors="ignore")) and path != Path(__file__):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


@pytest.mark.slow
def test_the_wheel_holds_its_data_and_makes_tables_without_the_checkout(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(tmp_path.glob("tailedcore-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in ("tailedcore/data/paper_tables.csv", "tailedcore/data/official_manifests.sha256"):
        assert data in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = """
import pandas as pd, tailedcore, sys
from pathlib import Path
assert Path(tailedcore.__file__).is_relative_to(Path(sys.argv[1])), tailedcore.__file__
from tailedcore.official import checksums
from tailedcore.pipeline import make_tables
rows = [dict(dataset="d", tail="step_k1", seed=1, model_seed=0, method="patchcore", category=c, class_role=r, metric=m,
             value=v, n_test=3, n_test_leaked=0, test_protocol="overlap")
        for c, r, v in (("a", "tail", 0.8), ("b", "head", 0.9)) for m in ("image_auroc", "pixel_auroc")]
pd.DataFrame(rows).to_csv("m.csv", index=False)
make_tables(metric_files=["m.csv"], dataset="d", tails=["step_k1"], methods=["patchcore"], out_dir="t",
            compare_with="mvtecad")
assert len(checksums()) == 60
print(pd.read_csv("t/d_vs_paper.csv").shape[0])
"""
    run = subprocess.run(
        [sys.executable, "-c", script, str(site)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.strip().splitlines()[-1]) > 0
