"""Cache the patch features and global embeddings of every image of one category."""

from pathlib import Path

from tailedcore.runtime.gpu import claim_for_job
from tailedcore.runtime.logs import to_rule_log

log = to_rule_log(snakemake)
sm = snakemake
slot = claim_for_job(sm.config["features"]["device"], log)  # before anything starts CUDA

from tailedcore.stages.features import extract_features  # noqa: E402
from tailedcore.stages.settings import feature_settings  # noqa: E402

report = extract_features(
    index_path=sm.input.index,
    category=sm.wildcards.category,
    features=feature_settings(sm.params.features, sm.config),
    folder=Path(sm.output.patches).parent,
    threads=sm.threads,
)
log.info("%s", {**report, "gpu": slot.index})
