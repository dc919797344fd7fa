"""Collect the benchmark files of one dataset into a runtime table (time and peak memory per stage)."""

from tailedcore.logs import to_rule_log
from tailedcore.tables import runtime_table

log = to_rule_log(snakemake)
sm = snakemake
stages = {stage: [files] if isinstance(files, str) else list(files) for stage, files in sm.input.items()}
table = runtime_table(stages)
table.to_csv(sm.output[0], index=False)
log.info("\n%s", table)
