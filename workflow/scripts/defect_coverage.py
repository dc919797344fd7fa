"""Defect coverage of one category's masks under the geometry (logged as one summary line)."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import check_coverage

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
check_coverage(sm.input.index, sm.params.geometry, {"gt_rule": sm.params.gt_rule}, sm.output.coverage)
