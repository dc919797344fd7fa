"""Build the dataset index (one row per image) from the dataset's folder or VisA's split csv."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import build_index

log = to_rule_log(snakemake)  # noqa: F821
index = build_index(snakemake.params.block, snakemake.input.marker, snakemake.output.index)  # noqa: F821
log.info("%d images in %d categories", len(index), index["category"].nunique())
