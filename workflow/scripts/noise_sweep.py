"""AUROC against the noise ratio for every method, tail and head classes apart."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import make_noise_sweep

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
table = make_noise_sweep(
    list(sm.input.metrics), sm.params.ratios, sm.wildcards.dataset, sm.params.tail, sm.output.table, sm.output.figure
)
log.info("\n%s", table)
