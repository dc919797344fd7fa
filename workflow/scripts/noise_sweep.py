"""AUROC against the noise ratio for every method, tail and head classes apart; what the memory banks keep."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import make_noise_sweep

log = to_rule_log(snakemake)
sm = snakemake
table = make_noise_sweep(
    metric_files=list(sm.input.metrics),
    ratios=sm.params.ratios,
    dataset=sm.wildcards.dataset,
    tail=sm.params.tail,
    table_path=sm.output.table,
    figure_path=sm.output.figure,
    diagnostics_files=list(sm.input.diagnostics),
    diagnostics_path=sm.output.diagnostics,
)
log.info("\n%s", table)
