"""Verify an archive's sha256 and extract it safely; the marker records what was extracted."""

from tailedcore.data.download import extract, verify
from tailedcore.logs import to_rule_log

log = to_rule_log(snakemake)
verify(snakemake.input.archive, snakemake.params.sha256)
record = extract(
    snakemake.input.archive,
    snakemake.output.root,
    snakemake.output.marker,
    snakemake.params.sha256,
)
log.info("extracted %d members to %s", record["members"], record["root"])
