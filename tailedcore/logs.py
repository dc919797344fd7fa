"""Logging for workflow scripts: everything, warnings and tracebacks included, goes to the rule's log."""

from __future__ import annotations

import logging
import sys


def to_rule_log(snakemake) -> logging.Logger:
    """Send logging, stdout and stderr of a Snakemake script to its ``log[0]``; return the script's logger."""
    path = snakemake.log[0]
    handle = open(path, "w", buffering=1)  # one run per log: a rerun replaces it
    sys.stdout = sys.stderr = handle
    logging.basicConfig(
        stream=handle, level=logging.INFO, force=True, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.captureWarnings(True)
    return logging.getLogger(f"rule.{snakemake.rule}")
