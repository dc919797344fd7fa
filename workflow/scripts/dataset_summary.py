"""The dataset summary: counts per category and label, image sizes and aspect ratios, defect coverage."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.data import summarise_dataset
from tailedcore.stages.settings import geometry_settings

log = to_rule_log(snakemake)
sm = snakemake
summarise_dataset(
    index_path=sm.input.index,
    coverage_paths=list(sm.input.coverage),
    geometry=geometry_settings(sm.params.geometry),
    dataset=sm.wildcards.dataset,
    csv_out=sm.output.csv,
    md_out=sm.output.md,
    resolution=sm.params.resolution,
)
