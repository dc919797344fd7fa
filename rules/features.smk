# Feature cache: computed once per image, shared by every split, seed and method.


rule features:
    input:
        index=rules.index_category.output.index,
        coverage=rules.coverage.output.coverage,  # checked before any feature
    output:
        patches=f"{RESULTS}/{{dataset}}/features/{{backbone}}/{{category}}.patches.npy",
        global_embeddings=f"{RESULTS}/{{dataset}}/features/{{backbone}}/{{category}}.global.npy",
        ids=f"{RESULTS}/{{dataset}}/features/{{backbone}}/{{category}}.ids.json",
    log:
        f"{RESULTS}/logs/features/{{dataset}}/{{backbone}}/{{category}}.log",
    benchmark:
        BENCHMARKS["features"]
    conda:
        CONDA_ENV
    threads: config["features"]["threads"]
    resources:
        mem_mb=4000,
        gpu=gpu_request("features"),
    params:
        features=feature_params(),
        version=VERSION,
    script:
        f"{SCRIPTS}/features.py"
