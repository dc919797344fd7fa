# Feature cache: computed once per image, shared by every split, seed and method.


rule features:
    input:
        index=rules.index_category.output.index,
        coverage=rules.coverage.output.coverage,  # checked before any feature
    output:
        patches=PATHS["features"] + ".patches.npy",
        global_embeddings=PATHS["features"] + ".global.npy",
        ids=PATHS["features"] + ".ids.json",
    log:
        rule_log("features", "{dataset}/{backbone}/{category}"),
    benchmark:
        PATHS["features_benchmark"]
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
