"""Fit one method on a split's unified training pool and score every test image."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import run_method

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
report = run_method(
    sm.wildcards.method,
    sm.params.options,
    sm.params.model_seed,
    sm.input.manifest,
    sm.input.index,
    sm.params.feature_folder,
    sm.params.categories,
    sm.params.features,
    (sm.wildcards.dataset, sm.wildcards.tail),
    sm.output.scores,
    sm.output.report,
    sm.threads,
    sm.params.device,
)
log.info(
    "memory bank %s patches, fit %.1f s on %s",
    report.get("memory_size"),
    report.get("fit_seconds"),
    report.get("device"),
)
