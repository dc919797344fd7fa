"""Draw the figures of one (dataset, tail): per-class bars, TailSampler, anomaly maps."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.settings import geometry_settings
from tailedcore.stages.tables import make_figures

log = to_rule_log(snakemake)
sm = snakemake
written = make_figures(
    dataset=sm.wildcards.dataset,
    tail=sm.wildcards.tail,
    seed=sm.params.seed,
    model_seed=sm.params.model_seed,
    methods=sm.params.methods,
    per_class_path=sm.input.per_class,
    index_path=sm.input.index,
    manifest_path=sm.input.manifest,
    score_paths=list(sm.input.scores),
    geometry=geometry_settings(sm.params.geometry),
    sigma=sm.params.evaluation["sigma"],
    out_dir=sm.params.out_dir,
)
log.info("wrote %s", [str(p) for p in written])
