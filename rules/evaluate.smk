# Per-class image and pixel AUROC of one run (split seed, model seed) as tidy rows, every method at once: the
# masks of a category are read once for all methods.


rule evaluate:
    input:
        scores=expand(run_path("scores"), method=METHODS, allow_missing=True),
        manifest=MANIFEST,
        index=index_file,
    output:
        metrics=expand(run_path("metrics"), method=METHODS, allow_missing=True),
    log:
        run_path("evaluate_log", method="all"),
    benchmark:
        BENCHMARKS["evaluate"]
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
