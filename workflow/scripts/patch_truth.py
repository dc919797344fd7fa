"""The truth of a split's training pool: group of every image, defect share of every patch cell."""

from tailedcore.runtime.logs import to_rule_log
from tailedcore.stages.evaluate import feature_grid, make_patch_truth
from tailedcore.stages.settings import geometry_settings

log = to_rule_log(snakemake)
sm = snakemake
truth = make_patch_truth(
    manifest_path=sm.input.manifest,
    index_path=sm.input.index,
    geometry=geometry_settings(sm.params.features),
    grid=feature_grid(sm.params.feature_folder, sm.params.categories),
    output=sm.output.truth,
)
noise = truth["role"] == "noise"
log.info(
    "%d training images, %d injected noise images (%d with a mask); %.1f %% of their cells touch a defect",
    len(noise),
    noise.sum(),
    truth["mask_known"][noise].sum(),
    100.0 * (truth["defect_fraction"][noise & truth["mask_known"]] > 0).mean() if noise.any() else 0.0,
)
