"""A temporary copy of the workflow (Snakefile, rules, scripts, schema, configs, profiles, envs, package), so
tests can add files to it, as a user would to their clone."""

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("Snakefile", "rules", "workflow", "config", "profiles", "envs", "tailedcore")


def copy_workflow(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for part in PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, target / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, target / part)
    return target


def readme_block(marker: str) -> str:
    """The fenced code block that follows ``<!-- marker -->`` in the README (the text users copy)."""
    text = (ROOT / "README.md").read_text()
    found = re.search(rf"<!-- {re.escape(marker)} -->\s*```[a-z]*\n(.*?)```", text, flags=re.S)
    if not found:
        raise AssertionError(f"README.md has no code block after <!-- {marker} -->")
    return found.group(1)
