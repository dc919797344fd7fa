"""Cache the patch features and global embeddings of every image of one category."""

from pathlib import Path

from tailedcore.gpu import claim_gpu
from tailedcore.logs import to_rule_log

log = to_rule_log(snakemake)
sm = snakemake
slot = claim_gpu(wanted=sm.config["features"]["device"] != "cpu")  # before anything starts CUDA
log.info("device slot: %s", slot.describe())

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
