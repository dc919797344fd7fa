"""Cache the patch features and global embeddings of every image of one category."""

from pathlib import Path

from tailedcore.gpu import claim_for_job
from tailedcore.logs import to_rule_log

log = to_rule_log(snakemake)
sm = snakemake
slot = claim_for_job(sm.config["features"]["device"], log)  # before anything starts CUDA

from tailedcore.pipeline import extract_features  # noqa: E402

# batch size and device only choose how fast: read from the config, not params, so they never rerun a job
runtime = {key: sm.config["features"][key] for key in ("batch_size", "device")}
report = extract_features(
    index_path=sm.input.index,
    category=sm.wildcards.category,
    features={**sm.params.features, **runtime},
    folder=Path(sm.output.patches).parent,
    threads=sm.threads,
)
log.info("%s", {**report, "gpu": slot.index})
