"""Parts of a fit that several fits share, computed once (``methods.reuse_fits``).

SoftPatch's LOF scores and filtered coreset are the first steps of TailedCore too, drawn from the same seeded
generator in the same order; PatchCore's coreset is that of TailedCore without its filter; a TailedCore
variant shares the parts its switches leave alone (docs/ablation.md). A part is read back only when
everything it depends on is the same: its name and parameters, the generator's state before it (which
encodes the model seed and every draw before), the training images and their feature files (names, sizes,
modification times), the device and the source of the samplers. What is read back is the array the part
returned and the generator's state after it, so the fit goes on exactly as if it had computed the part:
the scores are the same bytes either way, only the time differs. The job's cost record names the parts it
read and the seconds they took when they were computed.

The parts live beside the run's score files (``<scores folder>/.fit_parts/``); deleting that folder only
costs time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .io import atomic_path

FORMAT = 1  # raise when what a part file holds changes
_SOURCES = ("samplers/greedy.py", "samplers/kcenter.py", "samplers/deferred.py", "samplers/lof.py", "features/rows.py")


def _code_digest() -> str:
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name in _SOURCES:
        digest.update((root / name).read_bytes())
    return digest.hexdigest()


def files_identity(paths) -> list:
    """Name, size and modification time of each file: what a feature cache's identity is made of."""
    out = []
    for path in map(Path, paths):
        stat = path.stat()
        out.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return out


def array_digest(values: np.ndarray | None) -> str | None:
    """A short digest of an array given to a part (the rows a filter kept), None for None."""
    if values is None:
        return None
    values = np.ascontiguousarray(values)
    return hashlib.sha256(str(values.dtype).encode() + str(values.shape).encode() + values.tobytes()).hexdigest()


class FitParts:
    """``parts(name, params, generator, compute)`` returns ``compute()`` (an array), read from the folder when
    a fit with the same inputs computed it before. ``identity``: what the training data is (a JSON-able
    value); ``enabled`` False computes every part."""

    def __init__(self, folder, identity, enabled: bool = True):
        self.folder, self.enabled = Path(folder), enabled
        self.identity = json.dumps({"data": identity, "code": _code_digest(), "format": FORMAT}, sort_keys=True)
        self.reused: dict[str, float] = {}  # part -> seconds it took when it was computed
        self.log = logging.getLogger("tailedcore")

    def _path(self, name: str, params: dict, generator) -> Path:
        digest = hashlib.sha256(self.identity.encode())
        digest.update(json.dumps({"name": name, "params": params}, sort_keys=True, default=str).encode())
        digest.update(generator.get_state().numpy().tobytes())
        return self.folder / f"{name}-{digest.hexdigest()[:32]}.npz"

    def __call__(self, name: str, params: dict, generator, compute: Callable[[], np.ndarray]) -> np.ndarray:
        if not self.enabled:
            return compute()
        import torch

        path = self._path(name, params, generator)
        if path.exists():
            try:
                with np.load(path) as stored:
                    value, state, seconds = stored["value"], stored["generator_state"], float(stored["seconds"])
                generator.set_state(torch.from_numpy(np.array(state, dtype=np.uint8)))
                self.reused[name] = self.reused.get(name, 0.0) + seconds
                self.log.info("%s: read back from %s (it took %.1f s to compute)", name, path, seconds)
                return value
            except (OSError, KeyError, ValueError, RuntimeError) as err:  # a damaged part is computed again
                self.log.warning("%s: %s cannot be read back (%s); computing it", name, path, err)
        started = time.perf_counter()
        value = np.asarray(compute())
        seconds = time.perf_counter() - started
        try:
            with atomic_path(path) as temporary:
                with open(temporary, "wb") as handle:
                    np.savez(handle, value=value, generator_state=generator.get_state().numpy(), seconds=seconds)
        except OSError as err:  # a full disk costs the reuse, never the fit
            self.log.warning("%s: not kept for reuse (%s)", name, err)
        return value


def computed(parts: FitParts | None, name: str, params: dict, generator, compute: Callable[[], np.ndarray]):
    """``compute()`` through ``parts`` when the fit has them (a job's FeatureSet), else directly."""
    return compute() if parts is None else parts(name, params, generator, compute)
