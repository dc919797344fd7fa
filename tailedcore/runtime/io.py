"""Atomic writes: every file appears complete under its final name, or not at all.

A writer writes to a temporary name in the same folder and renames it into place (``os.replace`` is atomic on
one file system), so a job killed mid-write never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yields a temporary path beside ``path`` (same suffix); renamed to ``path`` when the block succeeds,
    removed when it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial{path.suffix}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def atomic_csv(frame, path: str | Path, **kwargs) -> None:
    kwargs.setdefault("index", False)
    with atomic_path(path) as temporary:
        frame.to_csv(temporary, **kwargs)


class DamagedFileError(ValueError):
    """A file the workflow wrote earlier cannot be read back; the message names it and how to rebuild it."""


def cache_folder() -> Path:
    """Per-machine measurements (kNN backend choice, cost model): $TAILEDCORE_CACHE or ~/.cache/tailedcore."""
    import os

    return Path(os.environ.get("TAILEDCORE_CACHE") or Path.home() / ".cache" / "tailedcore")


def rebuild_hint(path: str | Path) -> str:
    """The one command that rebuilds ``path`` and everything after it: the run's own config files (the
    Snakefile puts them in TAILEDCORE_CONFIGFILES for its jobs), the file right after --forcerun."""
    import os

    configfiles = os.environ.get("TAILEDCORE_CONFIGFILES") or "<your config>"
    command = f"snakemake --forcerun {path} --cores all --configfile {configfiles}"
    return f"rebuild it and everything after it with: {command}"


def _reason(err: Exception) -> str:
    """numpy's error text, without its advice to unpickle (never safe for a file of unknown origin)."""
    if "pickle" in str(err):
        return "not a plain NumPy file: reading it would mean unpickling, which the workflow never does"
    return f"{type(err).__name__}: {err}"


def load_array(path: str | Path, what: str, mmap: bool = False):
    """``np.load`` of a ``.npy`` file the workflow wrote, never unpickling; a missing, truncated or damaged
    file raises :class:`DamagedFileError` naming the file and the command that rebuilds it."""
    import numpy as np

    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as err:
        raise DamagedFileError(f"{path} ({what}) is missing; {rebuild_hint(path)}") from err
    except (ValueError, OSError, EOFError) as err:
        raise DamagedFileError(
            f"{path} ({what}) is damaged or truncated ({_reason(err)}); {rebuild_hint(path)}"
        ) from None


def load_npz(path: str | Path, what: str, keys: tuple[str, ...]) -> dict:
    """Every array of a ``.npz`` file the workflow wrote, never unpickling; checks that ``keys`` are there."""
    import zipfile

    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError as err:
        raise DamagedFileError(f"{path} ({what}) is missing; {rebuild_hint(path)}") from err
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DamagedFileError(
            f"{path} ({what}) is damaged or truncated ({_reason(err)}); {rebuild_hint(path)}"
        ) from None
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise DamagedFileError(f"{path} ({what}) lacks the arrays {missing}; {rebuild_hint(path)}")
    return arrays


def read_checked_csv(path: str | Path, what: str, columns: list[str] | tuple[str, ...], **kwargs):
    """``pd.read_csv`` of a table the workflow wrote, with the columns it must have; an empty, truncated or
    foreign file raises :class:`DamagedFileError` naming the file and the command that rebuilds it."""
    import pandas as pd

    try:
        table = pd.read_csv(path, **kwargs)
    except FileNotFoundError as err:
        raise DamagedFileError(f"{path} ({what}) is missing; {rebuild_hint(path)}") from err
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DamagedFileError(f"{path} ({what}) is damaged or truncated ({err}); {rebuild_hint(path)}") from err
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DamagedFileError(
            f"{path} ({what}) lacks the columns {missing} (has {list(table.columns)}): damaged, or written by "
            f"another release; {rebuild_hint(path)}"
        )
    return table
