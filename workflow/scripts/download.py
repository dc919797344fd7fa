"""Download a dataset archive from its mirrors (resume, sha256, atomic move)."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import download_archive

log = to_rule_log(snakemake)
download_archive(snakemake.params.block, snakemake.output.archive)
