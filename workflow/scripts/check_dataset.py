"""`snakemake check` for one dataset: every category and every configured split, all problems at once."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import check_dataset

log = to_rule_log(snakemake)
sm = snakemake
check_dataset(
    block=sm.params.block,
    marker=sm.input.marker,
    dataset=sm.wildcards.dataset,
    categories=sm.params.categories,
    splits=sm.params.splits,
    output=sm.output.report,
    config={"features": sm.config["features"], "methods": sm.config["methods"]},  # for the time estimate
)
log.info("%s: no problem", sm.wildcards.dataset)
