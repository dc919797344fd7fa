# Datasets: synthetic generation, download + verify + extract, given folders; then the dataset index.
# Every dataset ends in a ready marker (resources/datasets/<name>.ready.json) that records its root. The
# logs and benchmark files of these rules live under resources/ too: a wiped or moved results/ never makes
# the workflow download, extract or generate a dataset again.


rule synthetic_dataset:
    output:
        root=directory(PATHS["dataset_root"]),
        marker=PATHS["dataset_marker"],
    log:
        rule_log("synthetic_dataset", under="resources"),
    benchmark:
        PATHS["synthetic_dataset_benchmark"]
    wildcard_constraints:
        dataset=SYNTHETIC,
    conda:
        CONDA_ENV
    params:
        block=lambda wc: dataset_identity(wc.dataset),
        version=VERSION,
    script:
        f"{SCRIPTS}/synthetic_dataset.py"


rule given_folder:
    output:
        marker=PATHS["dataset_marker"],
    log:
        rule_log("given_folder", under="resources"),
    wildcard_constraints:
        dataset=GIVEN_FOLDER,
    conda:
        CONDA_ENV
    params:
        path=lambda wc: DATASETS[wc.dataset]["path"],
    script:
        f"{SCRIPTS}/given_folder.py"


rule download:
    output:
        archive=PATHS["archive"],
    log:
        rule_log("download", "{filename}", under="resources"),
    retries: 1
    conda:
        CONDA_ENV
    params:
        block=lambda wc: next(b for b in DATASETS.values() if b.get("filename") == wc.filename),
    script:
        f"{SCRIPTS}/download.py"


rule extract:
    input:
        archive=lambda wc: archive_path(wc.dataset),
    output:
        root=directory(PATHS["dataset_root"]),
        marker=PATHS["dataset_marker"],
    log:
        rule_log("extract", under="resources"),
    benchmark:
        PATHS["extract_benchmark"]
    wildcard_constraints:
        dataset=FROM_ARCHIVE,
    conda:
        CONDA_ENV
    params:
        sha256=lambda wc: DATASETS[wc.dataset].get("sha256"),
    script:
        f"{SCRIPTS}/extract.py"


rule elpv_dataset:
    output:
        root=directory(PATHS["dataset_root"]),
        marker=PATHS["dataset_marker"],
    log:
        rule_log("elpv_dataset", under="resources"),
    wildcard_constraints:
        dataset=ELPV,
    conda:
        CONDA_ENV
    params:
        block=lambda wc: dataset_identity(wc.dataset),
        version=VERSION,
    script:
        f"{SCRIPTS}/elpv_dataset.py"


# The index is built per category (every file's header checked, all offenders listed at once): a change in
# one category of a folder dataset rebuilds that category's index and features only.
rule index_category:
    input:
        marker=lambda wc: dataset_marker(wc.dataset),
    output:
        index=PATHS["category_index"],
    log:
        rule_log("index", "{dataset}/{category}"),
    conda:
        CONDA_ENV
    params:
        # what defines the images (kind, categories, masks, the synthetic and ELPV options), never a split
        # setting: a new noise ratio, tail or split rule reindexes nothing, so no feature cache is recomputed
        identity=lambda wc: category_identity(wc.dataset, wc.category),
        version=VERSION,
    script:
        f"{SCRIPTS}/index_category.py"


rule index:
    input:
        categories=lambda wc: [category_index(wc.dataset, c) for c in categories(wc.dataset)],
    output:
        index=PATHS["index"],
    log:
        rule_log("index"),
    conda:
        CONDA_ENV
    params:
        version=VERSION,
    script:
        f"{SCRIPTS}/index.py"


# Defect coverage under the geometry, per category, before any feature is computed (the features rule
# reads it): how many defect pixels of every mask survive the crop, resize or padding.
rule coverage:
    input:
        index=lambda wc: category_index(wc.dataset, wc.category),
    output:
        coverage=PATHS["coverage"],
    log:
        rule_log("coverage", "{dataset}/{category}"),
    conda:
        CONDA_ENV
    params:
        geometry=geometry_params(),
        gt_rule=config["evaluation"].get("gt_rule", "exact_one"),
        version=VERSION,
    script:
        f"{SCRIPTS}/defect_coverage.py"


# Every category indexed and every configured split drawn in ONE job, first (priority): all problems of a
# dataset in one message, a broken category hiding nothing. The summary (and so `all`) waits for it. It holds a
# fit's threads: the time estimate measures its rates here, once per machine, and nothing may run beside it (the
# coverage jobs beside it made the greedy's rate 2.2x slow and the estimate 1.5x pessimistic).
rule check_dataset:
    input:
        marker=lambda wc: dataset_marker(wc.dataset),
    output:
        report=PATHS["check"],
    log:
        rule_log("check"),
    priority: 100
    conda:
        CONDA_ENV
    threads: config["methods"]["threads"]
    params:
        block=lambda wc: DATASETS[wc.dataset],
        categories=lambda wc: categories(wc.dataset),
        identity=lambda wc: [category_identity(wc.dataset, c) for c in categories(wc.dataset)],
        splits={**split_params(), "tails": TAILS, "seeds": SEEDS},
        plan={  # what the time estimate depends on (not the runtime knobs: they never rerun a job)
            "features": feature_params(),
            "methods": {k: v for k, v in config["methods"].items() if k not in ("threads", "device")},
        },
        version=VERSION,
    script:
        f"{SCRIPTS}/check_dataset.py"


rule dataset_summary:
    input:
        check=ancient(str(rules.check_dataset.output.report)),  # it must pass first; a new estimate changes no summary
        index=rules.index.output.index,
        coverage=lambda wc: expand(rules.coverage.output.coverage, dataset=wc.dataset, category=categories(wc.dataset)),
    output:
        csv=in_report(PATHS["summary"] + ".csv", "dataset_summary", "Dataset", table="summary"),
        md=PATHS["summary"] + ".md",
    log:
        rule_log("dataset_summary"),
    conda:
        CONDA_ENV
    params:
        geometry=geometry_params(),
        resolution=config["evaluation"].get("resolution", "model"),
        version=VERSION,
    script:
        f"{SCRIPTS}/dataset_summary.py"


# `snakemake check`: the index, header checks and defect coverage of every dataset, in seconds, before any
# feature is computed; the summary of each dataset is results/<dataset>/summary.md.
rule check:
    input:
        [
            path
            for dataset in DATASETS
            for path in expand([rules.check_dataset.output.report, rules.dataset_summary.output.md], dataset=dataset)
        ],
    log:
        rule_log("check", "all"),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "cat {input} | tee {log}"
