"""The diagnostics of a dataset aggregated over seeds: tidy CSV, Markdown tables, the motivation figure."""

from pathlib import Path

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import make_diagnostics_tables

log = to_rule_log(snakemake)
sm = snakemake
summary = make_diagnostics_tables(
    diagnostics_files=list(sm.input.diagnostics),
    dataset=sm.wildcards.dataset,
    tails=sm.params.tails,
    methods=sm.params.methods,
    table_path=sm.output.table,
    markdown_path=sm.output.markdown,
    figure_stem=Path(sm.output.figure).with_suffix(""),
)
log.info("%d cells", len(summary))
