"""Where the heavy numerics run: device resolution and thread counts, shared by every stage."""

from __future__ import annotations

import torch

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(device: str) -> torch.device:
    """cpu | cuda | auto (CUDA when a GPU is visible, else CPU); asking for CUDA without one is an error."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {DEVICES}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for but no CUDA device is visible; set it to 'cpu' or 'auto'")
    return torch.device(device)


_DEVICE = "cpu"


def set_device(device: str) -> torch.device:
    """Process-wide device of the method numerics (coreset, LOF, kNN), like ``torch.set_num_threads``;
    set once per job from the config's ``methods.device``."""
    global _DEVICE
    resolved = resolve_device(device)
    _DEVICE = resolved.type
    return resolved


def current_device() -> str:
    return _DEVICE


def machine_name() -> str:
    """Host, architecture, CPU model and CPU count: what the cached measurements (the kNN backend ``auto``
    chose, the time estimate's rates) are keyed by. The CPU model is in the key because a host name can stay
    while the CPU under it changes (a virtual machine moved, a cluster's nodes sharing one home folder)."""
    import os
    import platform

    model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{platform.node()}|{platform.machine()}|{model}|{os.cpu_count()}cpu"


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch and in the numba kernels (the rule's ``threads:``)."""
    import numba

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


# Seconds spent in the named parts of a fit (coreset, filter, tail_sampler), for the cost table: each sampler
# adds its own time; a fit job reads them after the fit (``part_seconds``).
_PARTS: dict[str, float] = {}


class timed_part:
    """``with timed_part("coreset"):`` (or ``@timed_part("coreset")`` on a function) adds the block's wall time
    to the part's total."""

    def __init__(self, name: str):
        self.name = name

    def __call__(self, function):
        import functools

        @functools.wraps(function)
        def timed(*args, **kwargs):
            with timed_part(self.name):
                return function(*args, **kwargs)

        return timed

    def __enter__(self):
        import time

        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        import time

        _PARTS[self.name] = _PARTS.get(self.name, 0.0) + time.perf_counter() - self.started
        return False


def reset_parts() -> None:
    _PARTS.clear()


def part_seconds() -> dict[str, float]:
    return dict(_PARTS)
