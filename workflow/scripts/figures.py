"""Draw the figures of one (dataset, tail): per-class bars, TailSampler, anomaly maps."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import make_figures

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
written = make_figures(
    sm.wildcards.dataset,
    sm.wildcards.tail,
    sm.params.seed,
    sm.params.methods,
    sm.params.results,
    sm.input.per_class,
    sm.params.features,
    sm.params.evaluation,
    sm.params.out_dir,
)
log.info("wrote %s", [str(p) for p in written])
