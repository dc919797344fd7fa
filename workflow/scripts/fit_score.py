"""Fit one method on a split's unified training pool and score every test image."""

from tailedcore.runtime.gpu import claim_for_job
from tailedcore.runtime.logs import to_rule_log

log = to_rule_log(snakemake)
sm = snakemake
slot = claim_for_job(sm.config["methods"]["device"], log)  # before anything starts CUDA

from tailedcore.stages.methods import run_method  # noqa: E402
from tailedcore.stages.settings import feature_settings  # noqa: E402

report = run_method(
    method=sm.wildcards.method,
    implementation=sm.params.implementation,
    options=sm.params.options,
    seed=sm.params.model_seed,
    manifest_path=sm.input.manifest,
    index_path=sm.input.index,
    feature_folder=sm.params.feature_folder,
    categories=sm.params.categories,
    features=feature_settings(sm.params.features, sm.config),
    setting=(sm.wildcards.dataset, sm.wildcards.tail),
    scores_path=sm.output.scores,
    report_path=sm.output.report,
    provenance_path=sm.output.provenance,
    threads=sm.threads,
    device=sm.config["methods"]["device"],  # where only: read from the config, never a param
    reuse_fits=sm.config["methods"].get("reuse_fits", True),  # how fast only: the same scores either way
    gpu=slot.index,
)
log.info(
    "memory bank %s patches, fit %.1f s on %s",
    report.get("memory_size"),
    report.get("fit_seconds"),
    report.get("device"),
)
