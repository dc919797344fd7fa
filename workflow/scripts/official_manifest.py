"""Fetch one official manifest file (pinned commit or local copy) and check its sha256."""

from tailedcore.logs import to_rule_log
from tailedcore.official import fetch_official

log = to_rule_log(snakemake)
sm = snakemake
fetch_official(
    sm.params.kind,
    sm.wildcards.tail,
    int(sm.wildcards.seed),
    f"{sm.wildcards.name}.txt",
    sm.output[0],
    local_dir=sm.params.local_dir,
    base_url=sm.params.base_url,
)
