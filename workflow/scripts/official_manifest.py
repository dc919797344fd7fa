"""Fetch one official manifest file (pinned commit or local copy) and check its sha256."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.splits import fetch_official_manifest

log = to_rule_log(snakemake)
sm = snakemake
fetch_official_manifest(
    kind=sm.params.kind,
    tail=sm.wildcards.tail,
    seed=sm.wildcards.seed,
    name=sm.wildcards.name,
    output=sm.output[0],
    local_dir=sm.params.local_dir,
    base_url=sm.params.base_url,
)
