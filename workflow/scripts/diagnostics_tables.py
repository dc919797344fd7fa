"""The diagnostics of a dataset aggregated over seeds: tidy CSV, Markdown tables, the class-by-class table, the
motivation figure."""

from pathlib import Path

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import make_diagnostics_tables

log = to_rule_log(snakemake)
sm = snakemake
summary = make_diagnostics_tables(
    diagnostics_files=list(sm.input.diagnostics),
    metric_files=list(sm.input.metrics),
    dataset=sm.wildcards.dataset,
    tails=sm.params.tails,
    methods=sm.params.methods,
    outputs={
        "table": sm.output.table,
        "markdown": sm.output.markdown,
        "per_category": sm.output.per_category,
        "per_category_md": sm.output.per_category_md,
        "figure_stem": Path(sm.output.figure).with_suffix(""),
        "per_category_figure_stem": Path(sm.output.per_category_figure).with_suffix(""),
    },
)
log.info("%d cells", len(summary))
