"""Index one category: one row per image, every image's and mask's header checked."""

from tailedcore.logs import to_rule_log
from tailedcore.stages.data import build_category_index

log = to_rule_log(snakemake)
sm = snakemake
# the odd-mask policy from the config, not params: it changes no number, and check_dataset (which has it among its
# params) says what it does
odd_masks = sm.config["datasets"][sm.wildcards.dataset].get("odd_masks", "refuse")
index = build_category_index(sm.params.identity, sm.input.marker, sm.wildcards.category, sm.output.index, odd_masks)
log.info("%s: %d images", sm.wildcards.category, len(index))

# A step K (or Pareto minimum) that would leave a tail class at full size is an error before any feature is
# computed. The split settings are read from the config, not params: changing them does not reindex.
if sm.config["splits"].get("source") == "generated" or sm.params.identity["kind"] not in ("mvtec", "visa"):
    from tailedcore.data.index import raise_all
    from tailedcore.splits import SplitRules, full_size_tails

    rules = SplitRules(**sm.config["splits"].get("rules", {}))
    raise_all(full_size_tails(index, sm.config["splits"]["tails"], rules), "with the configured tails")
