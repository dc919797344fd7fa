"""What every run cost (fit seconds and its parts, inference per image, memory bank, peak memory) beside its AUROC."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import make_cost_table

log = to_rule_log(snakemake)
sm = snakemake
summary = make_cost_table(
    report_files=list(sm.input.reports),
    metric_files=list(sm.input.metrics),
    dataset=sm.wildcards.dataset,
    tails=sm.params.tails,
    methods=sm.params.methods,
    csv_out=sm.output.csv,
    md_out=sm.output.md,
)
log.info("%d cells", len(summary))
