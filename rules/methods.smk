# Methods: fit on the unified training pool of a split, score every test image.
# Output contract (docs/architecture.md, "Scores"): any rule that writes this npz joins evaluation and tables;
# the provenance of the memory bank (optional for rules, "Provenance") feeds the diagnostics.


rule fit_score:
    input:
        manifest=rules.split.output.manifest,
        index=index_file,
        features=feature_files,
    output:
        scores=run_path("scores"),
        report=run_path("report"),
        provenance=run_path("provenance"),
    log:
        run_path("fit_log"),
    benchmark:
        run_path("fit_benchmark")
    wildcard_constraints:
        method="|".join(FITTED_METHODS),  # package methods and their variants; baseline rule files own the rest
    conda:
        CONDA_ENV
    threads: config["methods"]["threads"]
    resources:
        mem_mb=8000,
        gpu=gpu_request("methods"),
    params:
        options=lambda wc: method_options(wc.method),
        implementation=lambda wc: method_class(wc.method),  # a variant: the package method it changes
        model_seed=lambda wc: int(wc.model_seed),
        feature_folder=lambda wc: feature_folder(wc.dataset),
        categories=lambda wc: categories(wc.dataset),
        features=feature_params(),
        version=VERSION,
    script:
        f"{SCRIPTS}/fit_score.py"
