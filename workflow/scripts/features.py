"""Cache the patch features and global embeddings of every image of one category."""

from pathlib import Path

from tailedcore.logs import to_rule_log
from tailedcore.pipeline import extract_features

log = to_rule_log(snakemake)  # noqa: F821
sm = snakemake  # noqa: F821
report = extract_features(
    sm.input.index, sm.wildcards.category, sm.params.features, Path(sm.output.patches).parent, sm.threads
)
log.info("%s", report)
