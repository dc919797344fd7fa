"""Defect coverage of one category's masks under the geometry (logged as one summary line)."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import check_coverage
from tailedcore.stages.settings import geometry_settings

log = to_rule_log(snakemake)
sm = snakemake
check_coverage(
    index_path=sm.input.index,
    geometry=geometry_settings(sm.params.geometry),
    gt_rule=sm.params.gt_rule,
    resolution=sm.config["evaluation"].get("resolution", "model"),  # the log line's level only
    output=sm.output.coverage,
)
