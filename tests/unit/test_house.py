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

from tailedcore.runtime.configdoc import render

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def test_config_readme_is_generated_from_the_schema():
    assert (ROOT / "config" / "README.md").read_text() == render(), (
        "config/README.md is stale: python -m tailedcore.runtime.configdoc > config/README.md"
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
    from tailedcore.data.images import Geometry
    from tailedcore.data.longtail import SplitRules
    from tailedcore.data.synthetic import SyntheticSpec
    from tailedcore.features.settings import FeatureSettings
    from tailedcore.methods.padim import PaDiMConfig
    from tailedcore.methods.patchcore import PatchCoreConfig
    from tailedcore.methods.softpatch import SoftPatchConfig
    from tailedcore.methods.tailedcore import TailedCoreConfig

    props = SCHEMA["properties"]
    dataset = props["datasets"]["additionalProperties"]["properties"]
    _check(FeatureSettings, props["features"], skip=("backbone", "geometry"))  # the backbone: each config's own
    geometry, defaults = Geometry().as_block(), _defaults(props["features"])
    assert {key: defaults[key] for key in ("geometry", "resize", "crop")} == {
        key: geometry[key] for key in ("geometry", "resize", "crop")
    }
    _check(PatchCoreConfig, props["methods"]["properties"]["patchcore"])
    _check(SoftPatchConfig, props["methods"]["properties"]["softpatch"])
    _check(TailedCoreConfig, props["methods"]["properties"]["tailedcore"], skip=("tail_augmentation",))
    _check(PaDiMConfig, props["methods"]["properties"]["padim"])
    _check(SplitRules, props["splits"]["properties"]["rules"])
    _check(SyntheticSpec, dataset["synthetic"])
    _check(ElpvSpec, dataset["elpv"])


PARSERS = ("from_config", "from_features", "parse")  # the one parser of each block, called by the job's entry


def test_stages_receive_typed_settings_not_the_raw_features_block():
    """The features and evaluation blocks are parsed once per job (tailedcore.stages.settings): no stage or method
    function takes `features`, `geometry` or `evaluation` as a mapping, and nothing else below the plan parses a
    geometry from one."""
    offenders = []
    for folder in ("stages", "methods", "features", "evaluation", "reporting", "samplers"):
        for path in sorted((ROOT / "tailedcore" / folder).rglob("*.py")):
            if path.name == "settings.py":
                continue  # the parsers
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name not in PARSERS:
                    for arg in node.args.args + node.args.kwonlyargs:
                        annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                        raw = annotation.split("[")[0] in ("dict", "Mapping")
                        if arg.arg in ("features", "geometry", "evaluation") and raw:
                            offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({arg.arg})")
                elif isinstance(node, ast.Attribute) and node.attr == "from_features":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} parses a geometry from a mapping")
    assert not offenders, offenders


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
from tailedcore.data.official import checksums
from tailedcore.stages.tables import make_tables
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


def _house_drawing() -> dict[int, list[str]]:
    """The floors of docs/architecture.md's drawing: {floor: module patterns} (names in columns 9-48)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    block = re.search(r"<!-- house -->\s*```\n(.*?)```", text, flags=re.S).group(1)
    floors, current = {}, None
    for line in block.splitlines():
        if line.startswith("floor "):
            current = int(line.split()[1])
        floors.setdefault(current, []).extend(line[9:48].split())
    return floors


def _package_imports() -> dict[str, set[str]]:
    """Module -> the package modules it imports (relative and absolute, at any depth of the file)."""
    paths = {}
    for path in sorted((ROOT / "tailedcore").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        paths[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    edges = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{alias.name}" for alias in node.names] + [target]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                while name and name not in paths and "." in name:
                    name = name.rsplit(".", 1)[0]
                if name in paths and name != module:
                    found.add(name)
        edges[module] = found
    return edges


def test_the_house_has_no_import_running_up_and_no_circle():
    import fnmatch
    import graphlib

    floors = _house_drawing()
    edges = _package_imports()

    def floor_of(module: str) -> int:
        short = "tailedcore" if module == "tailedcore" else module.removeprefix("tailedcore.")
        hits = [n for n, patterns in floors.items() if any(fnmatch.fnmatchcase(short, p) for p in patterns)]
        assert len(hits) == 1, f"{module} is on floors {hits} of docs/architecture.md's drawing (needs exactly one)"
        return hits[0]

    upward = [f"{a} -> {b}" for a, targets in edges.items() for b in targets if floor_of(b) > floor_of(a)]
    assert not upward, f"imports running up the house: {upward}"
    graphlib.TopologicalSorter(edges).prepare()  # raises CycleError on a circle
    assert len(floors) >= 5 and sum(map(len, floors.values())) >= 20


def test_a_module_over_300_lines_says_why_in_its_first_lines():
    long = []
    for path in (ROOT / "tailedcore").rglob("*.py"):
        lines = path.read_text().splitlines()
        if len(lines) > 300 and "Over 300 lines:" not in "\n".join(lines[:30]):
            long.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert not long, f"add 'Over 300 lines: <reason>' to the docstring of {long}"


def test_the_score_contract_has_one_stable_import_path(tmp_path):
    """Baseline authors import load_split, write_scores and SCORE_KEYS from tailedcore.scores (the README's
    example rule does), and the score contract is the one module the package keeps at its root."""
    import json

    import numpy as np

    from tailedcore.runtime.io import load_npz
    from tailedcore.scores import SCORE_KEYS, write_scores

    root = sorted(p.name for p in (ROOT / "tailedcore").glob("*.py"))
    assert root == ["__init__.py", "scores.py"], f"modules loose in the package root: {root}"
    ids = ["a/test/good/IMG 1", "a/test/crack/kratzer ü"]
    write_scores(
        tmp_path / "m.npz",
        tmp_path / "m.json",
        image_ids=ids,
        image_scores=np.array([0.1, 0.9]),
        patch_scores=np.zeros((2, 3, 3)),
        report={"method": "m"},
    )
    data = load_npz(tmp_path / "m.npz", "score file", SCORE_KEYS)
    assert data["image_ids"].tolist() == ids and data["patch_scores"].dtype == np.float32
    assert json.loads((tmp_path / "m.json").read_text()) == {"method": "m"}
    with pytest.raises(ValueError, match="NaN"):
        write_scores(
            tmp_path / "n.npz",
            tmp_path / "n.json",
            image_ids=ids,
            image_scores=np.array([np.nan, 0.9]),
            patch_scores=np.zeros((2, 3, 3)),
            report={},
        )


SCRIPT_IMPORTS = ("tailedcore.runtime.logs", "tailedcore.runtime.gpu", "tailedcore.stages.", "pathlib")


def _is_log_line(node) -> bool:
    call = node.value if isinstance(node, ast.Expr) else None
    return (
        isinstance(call, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and isinstance(call.func.value, ast.Name)
        and call.func.value.id == "log"
    )


def test_every_workflow_script_only_calls_its_stage():
    """A script reads ``snakemake`` and calls its stage function(s): no control flow, no function or class of its
    own, imports only from tailedcore.stages (plus the job's log and GPU claim), no call of anything else
    (its outputs are then written by the stages, atomically)."""
    offenders = []
    for path in sorted((ROOT / "workflow" / "scripts").glob("*.py")):
        tree = ast.parse(path.read_text())
        allowed_names = {"to_rule_log", "claim_for_job", "Path", "list", "dict", "int", "str", "float", "tuple"}
        for node in tree.body:
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if isinstance(node, ast.ImportFrom):
                if not (node.module or "").startswith(SCRIPT_IMPORTS) and node.module != "tailedcore.stages":
                    offenders.append(f"{where} imports from {node.module}")
                allowed_names |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                offenders.append(f"{where} imports {', '.join(a.name for a in node.names)}")
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.Expr)):
                if _is_log_line(node):
                    continue  # what a log line reports is not the job's work
                for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
                    func = call.func
                    name = func.id if isinstance(func, ast.Name) else None
                    if name is None and isinstance(func, ast.Attribute):
                        base = func.value
                        while isinstance(base, (ast.Attribute, ast.Subscript)):
                            base = base.value
                        # methods of snakemake's objects (sm.input.items(), sm.config[...].get) and of Path
                        if isinstance(base, ast.Name) and base.id in ("sm", "snakemake"):
                            continue
                        if isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "Path":
                            continue
                    if name not in allowed_names:
                        offenders.append(f"{where} calls {ast.unparse(func)}")
            else:
                offenders.append(f"{where}: a {type(node).__name__} (scripts call their stage, nothing else)")
    assert not offenders, offenders


CITING = (".py", ".smk", ".md", ".yaml", ".rst", ".sh", ".toml")
CITED_PATH = re.compile(
    r"(?<![\w/.-])((?:docs|tailedcore|rules|workflow|bench|config|profiles|envs|tests)/[\w./-]*\w\.(?:md|py|smk|yaml|sh|rst))(?!\w)"
)
FENCED = re.compile(r"^```.*?^```", flags=re.S | re.M)  # commands in a page's code blocks make the files they name
CITED_HEADING = re.compile(r"""(docs/\w+\.md|(?<![\w/])\w+\.md|README(?:\.md)?)\)?,\s*["'](\w[^"'()]{2,80}?)["'\n]""")


def _tracked(*suffixes: str) -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith(suffixes) or n.endswith("Snakefile")]


def _headings(page: Path) -> list[str]:
    found, fence = [], False
    for line in page.read_text().splitlines():
        fence = not fence if line.startswith("```") else fence
        if not fence and line.startswith("#"):
            found.append(" ".join(line.lstrip("#").split()))
    return found


def test_every_file_and_heading_the_project_cites_exists():
    """A path such as docs/recovery.md or tailedcore/plan/workflow.py named in the code, the configs or the docs
    exists, and a citation like (docs/statistics.md, "Statistics") names the start of a heading of that page."""
    missing, headless = [], []
    for path in _tracked(*CITING):
        if not path.is_file() or path.relative_to(ROOT).parts[0] == "tests":  # tests name the files they make
            continue
        text = path.read_text(errors="ignore")
        text = FENCED.sub("", text) if path.suffix == ".md" else text
        where = path.relative_to(ROOT)
        for cited in CITED_PATH.findall(text):
            if not (ROOT / cited).exists() and not (path.parent / cited).exists():
                missing.append(f"{where} cites {cited}")
        for page, heading in CITED_HEADING.findall(" ".join(text.split())):
            target = ROOT / page if "/" in page else (path.parent / page)
            if page.startswith("README"):
                target = ROOT / "README.md"
            if not target.is_file():
                missing.append(f"{where} cites {page}")
            elif not any(h.startswith(heading.strip()) for h in _headings(target)):
                headless.append(f"{where} cites {page}, {heading.strip()!r}")
    assert not missing, missing
    assert not headless, headless


def test_the_readme_is_a_doorway():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move detail into a page of docs/"
    linked = set(re.findall(r"\]\((docs/\w+\.md)\)", "\n".join(lines)))
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"pages of docs/ the README does not link: {sorted(pages - linked)}"


def test_the_rule_files_spell_no_path_of_their_own():
    """Every file a rule names comes from the plan (tailedcore/plan/workflow.py: ``paths``, ``run_path``,
    ``table_file``, ``figure_file``, ``rule_log``): no rule file writes the results or resources folder itself."""
    offenders = []
    for path in sorted((ROOT / "rules").rglob("*.smk")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\{RESULTS\}|\{RESOURCES\}|['\"/](results|resources)/", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, offenders
