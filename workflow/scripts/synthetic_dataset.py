"""Write the embedded synthetic dataset (MVTec AD layout) and its ready marker."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import make_synthetic

log = to_rule_log(snakemake)
make_synthetic(snakemake.params.block, snakemake.output.root, snakemake.output.marker)
log.info("synthetic dataset written to %s", snakemake.output.root)
