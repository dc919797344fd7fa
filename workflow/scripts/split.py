"""Write one noisy long-tailed split manifest (official or generated) and its statistics."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.splits import make_split

log = to_rule_log(snakemake)
sm = snakemake
manifest = make_split(
    index_path=sm.input.index,
    tail=sm.wildcards.tail,
    seed=int(sm.wildcards.seed),
    noise_ratio=sm.params.noise_ratio,
    split_config=sm.params.splits,
    manifest_path=sm.output.manifest,
    stats_path=sm.output.stats,
    official=(sm.input.prune, sm.input.inject) if sm.params.official else None,
)
log.info("%d training images, %d noise", (manifest["subset"] == "train").sum(), (manifest["role"] == "noise").sum())
