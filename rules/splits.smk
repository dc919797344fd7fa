# Noisy long-tailed split manifests (spec §1.3) and their per-category statistics.


rule split:
    input:
        index=f"{RESULTS}/{{dataset}}/index.csv",
    output:
        manifest=f"{RESULTS}/{{dataset}}/splits/{{tail}}/seed{{seed}}.csv",
        stats=f"{RESULTS}/{{dataset}}/splits/{{tail}}/seed{{seed}}.stats.csv",
    params:
        noise_ratio=lambda wc: DATASETS[wc.dataset]["noise_ratio"],
        splits=config["splits"],
        version=VERSION,
    log:
        f"{RESULTS}/logs/split/{{dataset}}/{{tail}}/seed{{seed}}.log",
    script:
        f"{SCRIPTS}/split.py"
