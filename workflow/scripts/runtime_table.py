"""Collect the benchmark files of one dataset into a runtime table (time and peak memory per stage)."""

from tailedcore.logs import to_rule_log
from tailedcore.tables import runtime_table

log = to_rule_log(snakemake)
sm = snakemake
table = runtime_table(list(sm.input.features) + list(sm.input.runs))
table.to_csv(sm.output[0], index=False)
log.info("\n%s", table)
