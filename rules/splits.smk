# Noisy long-tailed split manifests and their per-category statistics: the paper's official manifests
# (fetched at a pinned commit, sha256-checked) or our generator with the paper's rules (docs/protocol.md §1.3).


rule official_manifest:
    output:
        PATHS["official_list"],
    log:
        rule_log("official_manifest", "{dataset}/{tail}/seed{seed}/{name}"),
    wildcard_constraints:
        name="prune_good|inject_defects",
    conda:
        CONDA_ENV
    params:
        kind=lambda wc: dataset_block(wc.dataset)["kind"],
        local_dir=config["splits"]["official_dir"],
        base_url=config["splits"]["official_base_url"],
    script:
        f"{SCRIPTS}/official_manifest.py"


rule split:
    input:
        unpack(split_inputs),
    output:
        manifest=PATHS["manifest"],
        stats=PATHS["split_stats"],
    log:
        rule_log("split", "{dataset}/{tail}/seed{seed}"),
    conda:
        CONDA_ENV
    params:
        noise_ratio=lambda wc: dataset_block(wc.dataset)["noise_ratio"],
        splits=split_params(),
        official=lambda wc: uses_official_splits(wc.dataset),
        version=VERSION,
    script:
        f"{SCRIPTS}/split.py"
