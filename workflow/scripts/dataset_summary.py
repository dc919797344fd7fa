"""The dataset summary: counts per category and label, image sizes and aspect ratios, defect coverage."""

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import summarise_dataset

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
summary, lines = summarise_dataset(
    sm.input.index, list(sm.input.coverage), sm.params.geometry, sm.wildcards.dataset, sm.output.csv, sm.output.md
)
log.info("\n%s", summary.to_string(index=False))
for line in lines:
    log.info("%s", line)
