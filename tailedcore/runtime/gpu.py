"""One GPU per job on a box with several: a job takes a free device index and holds it for its lifetime.

``snakemake --resources gpu=N`` lets up to N GPU jobs run at once, but every one of them would land on
``cuda:0``. :func:`claim_gpu` gives each job its own device: it takes an exclusive ``flock`` on
``<lock dir>/gpu<index>.lock`` for the first free index among the visible devices (an existing
``CUDA_VISIBLE_DEVICES`` list is honoured), and restricts the job to that device by setting
``CUDA_VISIBLE_DEVICES`` before CUDA starts. The operating system releases the lock when the process ends,
however it ends (crash, kill): no stale state for anyone to clean up. Under SLURM the device the scheduler
assigned is used as is.

Call it before anything initialises CUDA (the workflow's GPU scripts call it first).
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_HELD: list = []  # open lock files of this process (closing one would release its lock)


@dataclass(frozen=True)
class GpuSlot:
    """The device a job runs on: ``index`` as the machine numbers it (None = no GPU), and how it was chosen."""

    index: str | None
    how: str

    def describe(self) -> str:
        return f"GPU {self.index} ({self.how})" if self.index is not None else f"no GPU ({self.how})"


def lock_dir() -> Path:
    folder = Path(os.environ.get("TAILEDCORE_GPU_LOCK_DIR") or Path(tempfile.gettempdir()) / "tailedcore-gpu-slots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def visible_devices() -> list[str]:
    """The device indices this process may use (:func:`tailedcore.runtime.config.visible_device_list`; torch asked
    only when nothing else can tell)."""
    from .config import visible_device_list

    devices = visible_device_list()
    if devices is None:
        import torch

        devices = [str(i) for i in range(torch.cuda.device_count())]
    return devices


def _try_lock(index: str):
    handle = open(lock_dir() / f"gpu{index}.lock", "a+")  # noqa: SIM115 - held open for the process's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def claim_gpu(wanted: bool = True, poll_seconds: float = 2.0, timeout: float | None = None) -> GpuSlot:
    """Take a free visible GPU for this process and restrict CUDA to it; wait while every one is taken.

    ``wanted`` False (the job's device is ``cpu``): nothing is claimed. Returns the slot, for the job's log
    and report.
    """
    if not wanted:
        return GpuSlot(None, "device cpu")
    if os.environ.get("SLURM_JOB_ID") and os.environ.get("CUDA_VISIBLE_DEVICES"):
        return GpuSlot(os.environ["CUDA_VISIBLE_DEVICES"], "assigned by SLURM")
    devices = visible_devices()
    if not devices:
        return GpuSlot(None, "none visible")
    if len(devices) == 1 and not os.environ.get("TAILEDCORE_FAKE_GPUS"):
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[0]
        return GpuSlot(devices[0], "the only visible device")
    started = time.monotonic()
    while True:
        for index in devices:
            handle = _try_lock(index)
            if handle is not None:
                _HELD.append(handle)
                os.environ["CUDA_VISIBLE_DEVICES"] = index
                return GpuSlot(index, f"slot of {len(devices)} visible, lock {lock_dir() / f'gpu{index}.lock'}")
        if timeout is not None and time.monotonic() - started > timeout:
            raise TimeoutError(f"no free GPU among {devices} after {timeout:.0f} s")
        if time.monotonic() - started < poll_seconds * 1.5:
            log.warning(
                "every visible GPU %s is held by another job: waiting for one (is --resources gpu=N "
                "larger than the number of GPUs?)",
                devices,
            )
        time.sleep(poll_seconds)


def claim_for_job(device: str, log: logging.Logger) -> GpuSlot:
    """A job's first step: its GPU slot when its config block's ``device`` may use a GPU, logged."""
    slot = claim_gpu(wanted=device != "cpu")
    log.info("device slot: %s", slot.describe())
    return slot


def release_all() -> None:
    """Release this process's slots (the OS does it anyway when the process ends)."""
    while _HELD:
        _HELD.pop().close()
