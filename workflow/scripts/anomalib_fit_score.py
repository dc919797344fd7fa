"""Fit one anomalib model on a split's unified training pool and score every test image."""

from tailedcore.runtime.gpu import claim_for_job
from tailedcore.runtime.logs import to_rule_log

log = to_rule_log(snakemake)
sm = snakemake
slot = claim_for_job(sm.config["methods"]["device"], log)  # before anything starts CUDA

from tailedcore.stages.anomalib import run_anomalib  # noqa: E402
from tailedcore.stages.settings import geometry_settings  # noqa: E402

report = run_anomalib(
    entry=sm.params.entry,
    seed=sm.params.model_seed,
    manifest_path=sm.input.manifest,
    index_path=sm.input.index,
    geometry=geometry_settings(sm.params.features),
    setting=(sm.wildcards.dataset, sm.wildcards.tail),
    scores_path=sm.output.scores,
    report_path=sm.output.report,
    threads=sm.threads,
    device=sm.config["methods"]["device"],
)
log.info(
    f"{report['method']} (anomalib {report['anomalib_version']} {report['anomalib_model']}): "
    f"fit {report['fit_seconds']:.1f} s, test {report['test_seconds']:.1f} s, peak {report['peak_rss_mb']:.0f} MB"
)
