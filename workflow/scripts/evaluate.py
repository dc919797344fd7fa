"""Per-class image and pixel AUROC of one run."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import evaluate

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
run = {
    "dataset": sm.wildcards.dataset,
    "tail": sm.wildcards.tail,
    "seed": int(sm.wildcards.seed),
    "method": sm.wildcards.method,
}
metrics = evaluate(
    sm.input.scores,
    sm.input.manifest,
    sm.input.index,
    run,
    sm.params.features,
    sm.params.evaluation,
    sm.params.protocol,
    sm.output.metrics,
)
log.info("\n%s", metrics.pivot_table(index="category", columns="metric", values="value").round(4))
