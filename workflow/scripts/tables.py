"""Aggregate the per-class metrics of one dataset into the paper-shaped tables and the paper comparison."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import make_tables

log = to_rule_log(snakemake)
sm = snakemake
written = make_tables(
    metric_files=list(sm.input.metrics),
    dataset=sm.wildcards.dataset,
    tails=sm.params.tails,
    methods=sm.params.methods,
    out_dir=sm.params.out_dir,
    compare_with=sm.params.compare_with,
    paper_names=sm.params.paper_names,
    table_metrics=tuple(sm.params.table_metrics),
    summaries=sm.params.summaries,
    reference_method=sm.params.reference_method,
    figure_dir=sm.params.figure_dir,
    protocol=sm.params.protocol,
)
log.info("wrote %s", [str(p) for p in written])
