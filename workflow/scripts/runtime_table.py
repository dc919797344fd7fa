"""Collect the benchmark files of one dataset into a runtime table (time and peak memory per stage)."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.tables import write_runtime_table

log = to_rule_log(snakemake)
write_runtime_table(dict(snakemake.input.items()), snakemake.output[0])
