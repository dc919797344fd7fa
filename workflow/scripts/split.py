"""Write one noisy long-tailed split manifest (official or generated) and its statistics."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import make_split

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
official = (sm.input.prune, sm.input.inject) if sm.params.official else None
manifest = make_split(
    sm.input.index,
    sm.wildcards.tail,
    int(sm.wildcards.seed),
    sm.params.noise_ratio,
    sm.params.splits,
    sm.output.manifest,
    sm.output.stats,
    official=official,
)
log.info("%d training images, %d noise", (manifest["subset"] == "train").sum(), (manifest["role"] == "noise").sum())
