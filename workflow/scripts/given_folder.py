"""Point the workflow at a dataset folder the user already has (no download)."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import mark_given_folder

log = to_rule_log(snakemake)
mark_given_folder(snakemake.params.path, snakemake.output.marker)
