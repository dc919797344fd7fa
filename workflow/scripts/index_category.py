"""Index one category: one row per image, every image's and mask's header checked."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import build_category_index

log = to_rule_log(snakemake)
sm = snakemake
# The odd-mask policy and the split settings come from the config, not params: neither changes the index, so
# changing them reindexes nothing (check_dataset, which has both among its params, reruns and says what they do).
build_category_index(
    sm.params.identity,
    sm.input.marker,
    sm.wildcards.category,
    sm.output.index,
    odd_masks=sm.config["datasets"][sm.wildcards.dataset].get("odd_masks", "refuse"),
    splits=sm.config["splits"],
)
