"""Every variant against the method it changes: paired differences, diagnostics and cost (docs/ablation.md)."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import make_ablation_table

log = to_rule_log(snakemake)
sm = snakemake
table = make_ablation_table(
    metric_files=list(sm.input.metrics),
    diagnostics_files=list(sm.input.diagnostics),
    report_files=list(sm.input.reports),
    dataset=sm.wildcards.dataset,
    tails=sm.params.tails,
    reference=sm.params.reference,
    methods=sm.params.methods,
    labels=sm.params.labels,
    outputs=dict(csv=sm.output.csv, md=sm.output.md, tex=sm.output.tex),
)
log.info("%d rows", len(table))
