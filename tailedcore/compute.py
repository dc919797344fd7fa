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


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads in torch and in the numba kernels (the rule's ``threads:``)."""
    import numba

    threads = max(1, int(threads))
    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
