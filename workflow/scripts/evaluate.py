"""Per-class image and pixel AUROC of one run."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import evaluate

log = to_rule_log(snakemake)
sm = snakemake
metrics = evaluate(
    scores_path=sm.input.scores,
    manifest_path=sm.input.manifest,
    index_path=sm.input.index,
    run={
        "dataset": sm.wildcards.dataset,
        "tail": sm.wildcards.tail,
        "seed": int(sm.wildcards.seed),
        "method": sm.wildcards.method,
    },
    features=sm.params.geometry,
    evaluation=sm.params.evaluation,
    protocol=sm.params.protocol,
    output=sm.output.metrics,
)
log.info("\n%s", metrics.pivot_table(index="category", columns="metric", values="value").round(4))
