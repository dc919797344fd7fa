"""Verify an archive's sha256 and extract it safely; the marker records what was extracted."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import extract_archive

log = to_rule_log(snakemake)
extract_archive(snakemake.input.archive, snakemake.output.root, snakemake.output.marker, snakemake.params.sha256)
