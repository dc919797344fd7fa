"""Per-class image and pixel AUROC of one run (split seed, model seed), every method at once."""

from pathlib import Path

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.evaluate import evaluate
from tailedcore.stages.settings import evaluation_settings

log = to_rule_log(snakemake)
sm = snakemake
methods = sm.params.methods
metrics = evaluate(
    scores_paths={Path(path).stem: path for path in sm.input.scores},
    manifest_path=sm.input.manifest,
    index_path=sm.input.index,
    run={
        "dataset": sm.wildcards.dataset,
        "tail": sm.wildcards.tail,
        "seed": int(sm.wildcards.seed),
        "model_seed": int(sm.wildcards.model_seed),
    },
    spec=evaluation_settings(sm.params.geometry, sm.params.evaluation),
    protocol=sm.params.protocol,
    outputs={Path(path).stem: path for path in sm.output.metrics},
)
log.info("\n%s", metrics.pivot_table(index=["method", "category"], columns="metric", values="value").round(4))
