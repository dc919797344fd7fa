"""Download a dataset archive from its mirrors (resume, sha256, atomic move)."""

from tailedcore.data.download import download
from tailedcore.logs import to_rule_log

log = to_rule_log(snakemake)
block = snakemake.params.block
download(block.get("urls", []), snakemake.output.archive, block.get("sha256"), block.get("size_hint", ""))
