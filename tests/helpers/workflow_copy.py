"""A temporary copy of the workflow (Snakefile, rules, scripts, schema, configs, profiles, envs, package), so
tests can add files to it, as a user would to their clone."""

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PARTS = ("Snakefile", "rules", "workflow", "config", "profiles", "envs", "tailedcore")


# The features of every tiny test config: offline lite0 at 48 px, 32-d patches (a few seconds per job).
TINY_FEATURES = {
    "backbone": "efficientnet_lite0",
    "resize": 48,
    "crop": 48,
    "pretrain_dim": 32,
    "target_dim": 32,
    "threads": 1,
}


def tiny_config(methods: dict) -> dict:
    """A one-split config on 3 tiny synthetic categories (a few seconds per job), with ``methods``."""
    return {
        "datasets": {
            "tiny": {
                "kind": "synthetic",
                "noise_ratio": 0.25,
                "categories": ["fabric", "washer", "chip"],
                "synthetic": {"seed": 0, "image_size": 48, "n_train": 8, "n_test_good": 3, "n_test_defect_per_type": 1},
            }
        },
        "splits": {"tails": ["step_k1"], "seeds": [1], "rules": {"tail_threshold": 6}},
        "features": dict(TINY_FEATURES),
        "methods": {"threads": 1, **methods},
    }


# The two-method tiny chain that several tests start from complete (tests/conftest.py: ``finished_tiny_run``).
TWO_METHODS = tiny_config({"run": ["patchcore", "padim"], "padim": {"num_channels": 16}})


def copy_run(finished: Path, target: Path) -> Path:
    """A copy of a finished working directory (results, resources, Snakemake's metadata, file times kept), so a test
    that needs a complete run does not run the chain again. Every path the run stores is relative to it."""

    def its_config(folder, names):  # the finished run's own config file: the copy gets the test's
        return ["config.yaml"] if Path(folder) == finished else []

    shutil.copytree(finished, target, symlinks=True, dirs_exist_ok=True, ignore=its_config)
    return target


def copy_workflow(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target / part)
    return target


def doc_with_marker(marker: str) -> str:
    """The text of the one page (README.md or docs/*.md) that holds ``<!-- marker -->``."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    holding = [page for page in pages if f"<!-- {marker} -->" in page.read_text()]
    if len(holding) != 1:
        raise AssertionError(f"<!-- {marker} --> is in {len(holding)} of README.md and docs/*.md (needs exactly one)")
    return holding[0].read_text()


def readme_block(marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in the README or a page of docs/ (the text users
    copy)."""
    text = doc_with_marker(marker)
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```[a-z]*\n(.*?)```", text, flags=re.S)
    if not found:
        raise AssertionError(f"no code block after <!-- {marker} -->")
    return found.group(1)
