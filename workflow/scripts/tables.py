"""Aggregate the per-class metrics of one dataset into the paper-shaped tables and the paper comparison."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import make_tables

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
written = make_tables(
    list(sm.input.metrics),
    sm.wildcards.dataset,
    sm.params.tails,
    sm.params.methods,
    sm.params.out_dir,
    sm.params.compare_with,
    table_metrics=tuple(sm.params.table_metrics),
    summaries=sm.params.summaries,
)
log.info("wrote %s", [str(p) for p in written])
