"""Logging for workflow scripts: everything, warnings and tracebacks included, goes to the rule's log."""

from __future__ import annotations

import logging
import sys
import time


def to_rule_log(snakemake) -> logging.Logger:
    """Send logging, stdout and stderr of a Snakemake script to its ``log[0]``; return the script's logger.

    A job that fails still says why on the terminal: the exception's own message (every line of it, no
    traceback) goes to the job's original stderr, which Snakemake shows (a cluster job's output file under
    SLURM), and the full traceback goes to the log."""
    path = snakemake.log[0]
    handle = open(path, "w", buffering=1)  # one run per log: a rerun replaces it
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
        message = str(value).strip() or "(no message)"
        terminal.write(f"\nError in rule {rule}: {kind.__name__}: {message}\n(traceback in {path})\n")
        terminal.flush()

    return report


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
