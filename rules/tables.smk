# Tables laid out like the paper's: rows = methods, columns = tail type x (C_t, C_h, all), seed means.


rule tables:
    input:
        metrics=lambda wc: expand(
            f"{RESULTS}/{wc.dataset}/metrics/{{tail}}/seed{{seed}}/{{method}}.csv",
            tail=TAILS,
            seed=SEEDS,
            method=METHODS,
        ),
    output:
        expand(
            f"{RESULTS}/tables/{{{{dataset}}}}_{{metric}}{{suffix}}",
            metric=["image_auroc", "pixel_auroc"],
            suffix=[".csv", ".tex", "_per_seed.csv"],
        ),
    params:
        tails=TAILS,
        methods=METHODS,
        out_dir=lambda wc, output: str(Path(output[0]).parent),
        version=VERSION,
    log:
        f"{RESULTS}/logs/tables/{{dataset}}.log",
    script:
        f"{SCRIPTS}/tables.py"
