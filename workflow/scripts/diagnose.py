"""The diagnostics of one run (split seed, model seed), every method at once: memory-bank composition, the
denoising filter's decisions and the TailSampler's calls against the split's truth."""

from pathlib import Path

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.evaluate import diagnose
from tailedcore.stages.settings import geometry_settings

log = to_rule_log(snakemake)
sm = snakemake
per_run = diagnose(
    scores_paths={Path(path).stem: path for path in sm.input.scores},
    truth_path=sm.input.truth,
    index_path=sm.input.index,
    geometry=geometry_settings(sm.params.features),
    run={
        "dataset": sm.wildcards.dataset,
        "tail": sm.wildcards.tail,
        "seed": int(sm.wildcards.seed),
        "model_seed": int(sm.wildcards.model_seed),
    },
    output=sm.output.diagnostics,
)
log.info("%d rows for %s", len(per_run), sorted(set(per_run["method"])))
