"""The dataset index: every category's rows in one table."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import build_index

log = to_rule_log(snakemake)
index = build_index(list(snakemake.input.categories), snakemake.output.index)
log.info("%d images in %d categories", len(index), index["category"].nunique())
