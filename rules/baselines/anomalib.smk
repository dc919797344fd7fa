# anomalib image models as baselines (docs/baselines.md, "anomalib models as baselines"): every entry of methods.anomalib
# is a method of its own, fitted on each run's training pool (all classes, the noise included, no labels) and
# scored on the run's test images under the benchmark's protocol; its score file joins evaluation and tables.
# The optional extra: pip install -e '.[anomalib]' (or --sdm conda: envs/anomalib.yaml).


rule anomalib:
    input:
        manifest=rules.split.output.manifest,
        index=index_file,
    output:
        scores=run_path("scores"),
        report=run_path("report"),
    log:
        run_path("fit_log"),
    benchmark:
        run_path("fit_benchmark")
    wildcard_constraints:
        method="|".join(ANOMALIB) or "(?!)",
    conda:
        str(Path(workflow.basedir, "envs", "anomalib.yaml"))
    threads: config["methods"]["threads"]
    resources:
        mem_mb=8000,
        gpu=gpu_request("methods"),
    params:
        entry=lambda wc: ANOMALIB[wc.method],
        model_seed=lambda wc: int(wc.model_seed),
        features=geometry_params(),
        version=VERSION,
    script:
        f"{SCRIPTS}/anomalib_fit_score.py"
