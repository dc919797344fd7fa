"""Config checks at parse time, before any job: the schema's errors in a few lines each (the offending key, the
allowed keys or values, a "did you mean" for near misses), method blocks for known methods only, and devices
that exist. Light imports only: the workflow calls this while parsing."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

# features knobs that only choose where or how fast features are computed: never a rule parameter (a change
# reruns nothing); scripts take them from the config (the `threads:` directive is the third such knob)
FEATURE_RUNTIME_KEYS = ("batch_size", "device")


class ConfigError(ValueError):
    """An invalid config; the message names every offending key and the fix."""


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def schema_problems(config: dict, schema_path: str | Path) -> list[str]:
    """Every schema violation of ``config`` as one short line."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path)):
        where = _where(error.absolute_path)
        moved = _moved_key(error, schema)
        if moved:
            problems.append(moved)
        elif error.validator == "additionalProperties" and isinstance(error.schema.get("properties"), dict):
            allowed = sorted(error.schema["properties"])
            extra = sorted(set(error.instance) - set(allowed))
            for key in extra:
                prefix = f"{where}." if error.absolute_path else ""
                problems.append(f"unknown key {prefix}{key}{suggest(key, allowed)}; allowed here: {', '.join(allowed)}")
        elif error.validator == "enum":
            problems.append(
                f"{where}: {error.instance!r} is not allowed{suggest(error.instance, error.validator_value)}; "
                f"choose one of {', '.join(map(str, error.validator_value))}"
            )
        elif error.validator == "pattern" and len(error.absolute_path) >= 2 and error.absolute_path[-2] == "categories":
            problems.append(category_name_problem(where, str(error.instance)))
        elif error.validator == "required":
            problems.append(f"{where}: {error.message}")
        elif error.validator in ("oneOf", "anyOf", "allOf") or error.validator == "if":
            problems.append(f"{where}: {error.message.splitlines()[0][:200]}")
        else:
            problems.append(f"{where}: {error.message[:200]}")
    return problems


def category_name_problem(where: str, name: str) -> str:
    """Why a category name cannot be used, and the two ways to map such a folder name."""
    import re

    safe = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or "category"
    return (
        f"{where}: category {name!r} cannot be used: a category name becomes part of every result path and job "
        f"name, so it may hold only letters, digits and underscores (A-Z, a-z, 0-9, _). Rename the folder "
        f"(mv '{name}' {safe}) or, to leave the data as it is, link it under a usable name inside the dataset "
        f"folder (ln -s '{name}' {safe}), and list {safe!r} in `categories`"
    )


# Keys that were renamed: what to write now (``{value}``: the old value, as a list where the new key is one).
RENAMED = {("methods", "seed"): "methods.seeds: [{value}] (the model seeds, a list; `methods.seed` was renamed)"}


def _moved_key(error, schema: dict) -> str | None:
    """The message for a renamed key, or for a key under ``methods`` that is neither a setting nor a method's
    options block (its value is not a mapping): jsonschema calls both "is not of type 'object'"."""
    path = tuple(error.absolute_path)
    if len(path) != 2 or path[0] != "methods" or error.validator != "type":
        return None
    if path in RENAMED:
        value = error.instance
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        return f"{'.'.join(path)} is no longer a key: write " + RENAMED[path].format(value=shown)
    known = sorted(schema["properties"]["methods"].get("properties", {}))
    return (
        f"unknown key methods.{path[1]}{suggest(path[1], known)}: not one of {', '.join(known)}, and its value "
        f"{error.instance!r} is no method's options block (a mapping)"
    )


def method_block_problems(methods: dict, known: list[str], settings: list[str]) -> list[str]:
    """A block under ``methods:`` must name a known method (package or baseline rule), or be a setting."""
    problems = []
    for key in methods:
        if key in settings or key in known:
            continue
        problems.append(
            f"methods.{key} is neither a setting ({', '.join(settings)}) nor a known method "
            f"({', '.join(known)}){suggest(key, known + settings)}: the block would be ignored"
        )
    return problems


# Keys of a variant (methods.variants.<name>) that are not options of the method it changes.
VARIANT_KEYS = ("of", "label")


def resolve_method(methods: dict, name: str) -> tuple[str, dict]:
    """(the package method that fits ``name``, its options) from the ``methods:`` block: a variant is the
    method named by its ``of`` with the variant's keys over that method's block (docs/ablation.md)."""
    variant = methods.get("variants", {}).get(name)
    if variant is None:
        return name, dict(methods.get(name) or {})
    changes = {k: v for k, v in variant.items() if k not in VARIANT_KEYS}
    return variant["of"], {**(methods.get(variant["of"]) or {}), **changes}


def visible_device_list() -> list[str] | None:
    """The GPU indices this process may use, without importing torch: ``CUDA_VISIBLE_DEVICES`` when set,
    ``TAILEDCORE_FAKE_GPUS=N`` (simulated devices, for tests), else ``nvidia-smi -L``. None when nothing
    can tell (a driver without nvidia-smi)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if os.environ.get("TAILEDCORE_FAKE_GPUS"):
        return [str(i) for i in range(int(os.environ["TAILEDCORE_FAKE_GPUS"]))]
    if shutil.which("nvidia-smi") is None:
        return [] if not Path("/dev/nvidiactl").exists() else None
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [str(i) for i, line in enumerate(line for line in listed.stdout.splitlines() if line.startswith("GPU "))]


def visible_gpus() -> int | None:
    devices = visible_device_list()
    return None if devices is None else len(devices)


def device_problems(config: dict) -> list[str]:
    """``cuda`` where this machine shows no GPU (``auto`` falls back to the CPU and is always fine)."""
    wanted = [f"{block}.device" for block in ("features", "methods") if config.get(block, {}).get("device") == "cuda"]
    if not wanted or visible_gpus() != 0:
        return []
    return [
        f"{key}: cuda, but this machine shows no GPU (no nvidia-smi, or CUDA_VISIBLE_DEVICES is empty); set "
        f"{key}: cpu or auto, or run on a GPU machine (a cluster profile's jobs are checked where they run)"
        for key in wanted
    ]


def share_configfiles(paths) -> None:
    """Tell this run's jobs its config files (TAILEDCORE_CONFIGFILES, inherited by every job): a job that finds
    a damaged file prints the exact command that rebuilds it (:func:`tailedcore.runtime.io.rebuild_hint`)."""
    import shlex

    os.environ["TAILEDCORE_CONFIGFILES"] = " ".join(shlex.quote(str(Path(p).resolve())) for p in paths)


def raise_problems(problems: list[str], source: str) -> None:
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in {source}:\n  " + "\n  ".join(problems))


def put_on_pythonpath(folder: str) -> None:
    """Put the checkout first on PYTHONPATH of every job, so that `tailedcore` is importable in conda
    environments, cluster jobs and the local venv alike (it sets the variable, it never reads a user's)."""
    current = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (folder, current) if p)


def yaml_problems(paths) -> list[str]:
    """The file, line and column of every config file that is not valid YAML (Snakemake's own message, 'Config
    file is not valid JSON or YAML', names neither: it reads the files before the workflow runs)."""
    import yaml

    problems = []
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                yaml.safe_load(handle)
        except OSError as err:
            problems.append(f"{path}: cannot be read ({err.strerror})")
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
            what = " ".join(
                str(part) for part in (getattr(err, "context", None), getattr(err, "problem", None)) if part
            )
            tab = " (YAML indents with spaces only: replace the tab)" if "'\\t'" in what else ""
            problems.append(f"{path}{where}: {what or err}{tab}")
    return problems


def main(argv=None) -> int:
    """``python -m tailedcore.runtime.config FILE...``: where a config file stops being YAML, or that all are fine."""
    paths = list(sys.argv[1:] if argv is None else argv)
    problems = yaml_problems(paths)
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{len(paths)} config file(s) are valid YAML")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
