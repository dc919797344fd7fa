"""Logging for workflow scripts: everything, warnings and tracebacks included, goes to the rule's log."""

from __future__ import annotations

import logging
import sys
import time


def to_rule_log(snakemake) -> logging.Logger:
    """Send logging, stdout and stderr of a Snakemake script to its ``log[0]``; return the script's logger.

    A job that fails still says why on the terminal: the exception's own message (every line of it, no
    traceback) goes to the job's original stderr, which Snakemake shows (a cluster job's output file under
    SLURM), and the full traceback goes to the log; a full disk and an exhausted memory say so in words
    (:func:`failure_message`). A job that dies from a signal (killed for memory, a crash in compiled code) says
    so too: run by Snakemake, the script forks and its parent waits (:func:`_watch_for_signals`)."""
    path = snakemake.log[0]
    _watch_for_signals(snakemake.rule, path)
    handle = open(path, "w", buffering=1)  # one run per log: a rerun replaces it
    import faulthandler

    faulthandler.enable(file=handle)  # a crash in compiled code leaves the Python stack in the log
    global _TERMINAL
    terminal = _TERMINAL = sys.stderr
    sys.stdout = sys.stderr = handle
    sys.excepthook = _job_failure_reporter(terminal, handle, f"{snakemake.rule}", path)
    logging.basicConfig(
        stream=handle, level=logging.INFO, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    return logging.getLogger(f"rule.{snakemake.rule}")


_TERMINAL = None  # the job's own stderr (Snakemake's terminal), once to_rule_log has redirected the streams


def to_terminal(text: str) -> None:
    """Show ``text`` on Snakemake's terminal (a cluster job's output file) as well as in the job's log."""
    logging.getLogger("tailedcore").info("%s", text)
    if _TERMINAL is not None:
        _TERMINAL.write(text.rstrip() + "\n")
        _TERMINAL.flush()


def _job_failure_reporter(terminal, handle, rule: str, path: str):
    def report(kind, value, traceback):
        import traceback as tb

        handle.write("".join(tb.format_exception(kind, value, traceback)))
        handle.flush()
        message = failure_message(value, rule)
        terminal.write(f"\nError in rule {rule}: {kind.__name__}: {message}\n(traceback in {path})\n")
        terminal.flush()

    return report


# what cuts a job's memory, by rule (the message of a job killed for memory, or out of it)
MEMORY_HINTS = {
    "fit_score": "a smaller coreset_ratio of the method, or a smaller features.size (fewer patches per image)",
    "anomalib": "a smaller batch_size of the anomalib entry, or a smaller features.size",
    "features": "a smaller features.batch_size, or a smaller features.size",
    "evaluate": "evaluation.resolution: model (native-resolution pixel metrics hold every mask at full size)",
}


def failure_message(error: BaseException, rule: str = "") -> str:
    """The terminal's words for a failed job: the error's own message, and for a full disk (ENOSPC, or numpy's
    short write '<n> requested and <m> written') the folder and its free space, for an exhausted memory the
    job's peak memory and the setting that cuts it."""
    import errno
    import re

    message = str(error).strip() or "(no message)"
    short_write = re.search(r"(\d+) requested and (\d+) written", message)
    if isinstance(error, OSError) and (error.errno == errno.ENOSPC or short_write):
        where = getattr(error, "filename", None)
        return message + "\n" + disk_full_words(where)
    if (
        isinstance(error, MemoryError)
        or (isinstance(error, OSError) and error.errno == errno.ENOMEM)
        or ("Cannot allocate memory" in message or "DefaultCPUAllocator: can't allocate memory" in message)
    ):
        return message + "\n" + memory_words(rule)
    return message


def disk_full_words(where=None) -> str:
    import os
    import shutil

    folder = os.path.dirname(os.path.abspath(where)) if where else os.getcwd()
    while folder and not os.path.exists(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder).free / 2**30
    return (
        f"disk full: {folder} has {free:.2f} GiB free; free space there (or move results/ to a larger disk and run "
        "from there), then run the same command again: no half-written file is left under its final name"
    )


def memory_words(rule: str, peak_bytes: float | None = None, certain: bool = True) -> str:
    import os
    import resource

    if peak_bytes is None:
        peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0  # Linux: KiB
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    hint = MEMORY_HINTS.get(rule, "a smaller features.size")
    peak = f"the job's peak memory was {peak_bytes / 2**30:.2f} GiB of the machine's {total:.1f} GiB"
    if certain:
        return f"out of memory: {peak}; what cuts it: {hint}; or run fewer jobs at once (--cores)"
    return f"{peak}; if it ran out of memory, what cuts it: {hint}; or run fewer jobs at once (--cores)"


SIGNAL_MEANINGS = {
    "SIGKILL": "most often the kernel's out-of-memory killer, else a kill from outside (kill -9, a scheduler's limit)",
    "SIGSEGV": "a crash inside compiled code (torch, faiss, numba); under a memory limit most often a failed "
    "allocation",
    "SIGBUS": "a crash reading a memory-mapped file (a file changed or truncated while read, or a full disk)",
    "SIGTERM": "stopped from outside (Ctrl-C, a scheduler's time limit)",
    "SIGINT": "stopped from outside (Ctrl-C)",
    "SIGABRT": "an internal check of a library failed (its message, if any, is in the log)",
}


def signal_words(rule: str, number: int, peak_bytes: float, log_path: str) -> str:
    """The terminal's words for a job that died from signal ``number``."""
    import signal

    name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
    meaning = SIGNAL_MEANINGS.get(name, "killed by a signal")
    words = f"\nError in rule {rule}: the job died from {name} ({number}): {meaning}.\n"
    if name in ("SIGKILL", "SIGSEGV", "SIGBUS", "SIGABRT"):
        words += memory_words(rule, peak_bytes, certain=False) + "\n"
    return words + f"(its log: {log_path})\n"


def _die_with_parent(parent: int) -> None:
    """The job (the forked child) ends when its watching parent is killed (Snakemake cancelling it with SIGKILL):
    never an orphan that runs on."""
    import ctypes
    import os
    import signal

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _watch_for_signals(rule: str, log_path: str) -> None:
    """In a script Snakemake runs (``.snakemake/scripts/``), fork: the child returns and does the job; the parent
    waits, passes Ctrl-C and SIGTERM on, and when the child dies from a signal writes :func:`signal_words` to the
    terminal and the log, then exits with the shell's code for it (128 + the signal). Skipped where other Python
    threads already run (a fork keeps only the calling thread) and with ``TAILEDCORE_NO_WATCH=1``."""
    import os
    import resource
    import signal
    import threading

    script = sys.argv[0] if sys.argv else ""
    if ".snakemake/scripts/" not in script.replace(os.sep, "/") or os.environ.get("TAILEDCORE_NO_WATCH") == "1":
        return
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    child = os.fork()
    if child == 0:
        _die_with_parent(parent)
        return
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, lambda received, _frame: os.kill(child, received))
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024.0
        words = signal_words(rule, number, peak, log_path)
        try:
            with open(log_path, "a") as log:
                log.write(words)
        except OSError:
            pass
        sys.stderr.write(words)
        sys.stderr.flush()
        os._exit(128 + number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


class ProgressLog:
    """Logs ``what`` at most every ``EVERY`` seconds to the job's log: done / total, elapsed and an estimate of
    the time left from the recent rate (for the greedy coreset, whose late iterations are cheaper, it errs
    long)."""

    EVERY = 10.0

    def __init__(self, what: str, total: int, logger: str = "tailedcore.progress"):
        self.what, self.total, self.every = what, total, self.EVERY
        self.log = logging.getLogger(logger)
        self.started = self.last = time.perf_counter()
        self.last_done = 0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if now - self.last < self.every or done >= self.total:
            return
        rate = (done - self.last_done) / max(now - self.last, 1e-9)
        left = (self.total - done) / rate if rate > 0 else float("nan")
        elapsed = now - self.started
        self.log.info(
            f"{self.what}: {done} / {self.total} ({100 * done / self.total:.0f} %), {elapsed:.0f} s elapsed, "
            f"about {left:.0f} s left"
        )
        self.last, self.last_done = now, done
