"""Defect coverage of one category's masks under the geometry (logged as one summary line)."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import check_coverage

log = to_rule_log(snakemake)
sm = snakemake
check_coverage(
    index_path=sm.input.index,
    features=sm.params.geometry,
    evaluation={"gt_rule": sm.params.gt_rule},
    output=sm.output.coverage,
)
