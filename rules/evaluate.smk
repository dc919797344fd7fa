# Per-class image and pixel AUROC of one run (split seed, model seed) as tidy rows, every method at once: the
# masks of a category are read once for all methods.


rule evaluate:
    input:
        scores=expand(run_path("scores"), method=METHODS, allow_missing=True),
        manifest=rules.split.output.manifest,
        index=index_file,
    output:
        metrics=expand(run_path("metrics"), method=METHODS, allow_missing=True),
    log:
        run_path("evaluate_log", method="all"),
    benchmark:
        run_path("evaluate_benchmark", method="all")
    conda:
        CONDA_ENV
    params:
        methods=METHODS,
        geometry=geometry_params(),
        evaluation=config["evaluation"],
        protocol="no_overlap" if config["splits"]["exclude_injected_from_test"] else "overlap",
        version=VERSION,
    script:
        f"{SCRIPTS}/evaluate.py"


# Diagnostics (docs/protocol.md §3.3): the truth of a split's training pool on the feature grid, and
# per run the composition of every memory bank, the denoising filter's decisions and the TailSampler's calls
# against it, read from files: adding them reruns no fit once the provenance files exist.
rule patch_truth:
    input:
        manifest=rules.split.output.manifest,
        index=index_file,
        features=feature_files,
    output:
        truth=PATHS["patch_truth"],
    log:
        rule_log("patch_truth", "{dataset}/{tail}/seed{seed}"),
    conda:
        CONDA_ENV
    params:
        features=geometry_params(),
        feature_folder=lambda wc: feature_folder(wc.dataset),
        categories=lambda wc: categories(wc.dataset),
        version=VERSION,
    script:
        f"{SCRIPTS}/patch_truth.py"


rule diagnose:
    input:
        scores=expand(run_path("scores"), method=METHODS, allow_missing=True),
        provenance=provenance_files(),
        truth=rules.patch_truth.output.truth,
        index=index_file,
    output:
        diagnostics=run_path("diagnostics", method="all"),
    log:
        run_path("diagnose_log", method="all"),
    benchmark:
        run_path("diagnose_benchmark", method="all")
    conda:
        CONDA_ENV
    params:
        features=geometry_params(),
        version=VERSION,
    script:
        f"{SCRIPTS}/diagnose.py"
