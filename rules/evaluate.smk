# Per-class image and pixel AUROC of one run, as tidy rows.


rule evaluate:
    input:
        scores=f"{RESULTS}/{{dataset}}/scores/{{tail}}/seed{{seed}}/{{method}}.npz",
        manifest=f"{RESULTS}/{{dataset}}/splits/{{tail}}/seed{{seed}}.csv",
        index=index_file,
    output:
        metrics=f"{RESULTS}/{{dataset}}/metrics/{{tail}}/seed{{seed}}/{{method}}.csv",
    log:
        f"{RESULTS}/logs/evaluate/{{dataset}}/{{tail}}/seed{{seed}}/{{method}}.log",
    benchmark:
        BENCHMARKS["evaluate"]
    conda:
        CONDA_ENV
    params:
        geometry=geometry_params(),
        evaluation=config["evaluation"],
        protocol="no_overlap" if config["splits"]["exclude_injected_from_test"] else "overlap",
        version=VERSION,
    script:
        f"{SCRIPTS}/evaluate.py"
