"""Write the ELPV solar cells of the elpv-dataset wheel in the MVTec layout, and the ready marker."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import make_elpv

log = to_rule_log(snakemake)
make_elpv(snakemake.params.block, snakemake.output.root, snakemake.output.marker)
log.info("ELPV cells written to %s", snakemake.output.root)
