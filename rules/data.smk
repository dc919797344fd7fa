# Datasets: synthetic generation, download + verify + extract, given folders; then the dataset index.
# Every dataset ends in a ready marker (resources/datasets/<name>.ready.json) that records its root.


rule synthetic_dataset:
    output:
        root=directory(f"{RESOURCES}/datasets/{{dataset}}"),
        marker=f"{RESOURCES}/datasets/{{dataset}}.ready.json",
    log:
        f"{RESULTS}/logs/synthetic_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthetic_dataset/{{dataset}}.tsv"
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
        marker=f"{RESOURCES}/datasets/{{dataset}}.ready.json",
    log:
        f"{RESULTS}/logs/given_folder/{{dataset}}.log",
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
        archive=f"{RESOURCES}/downloads/{{filename}}",
    log:
        f"{RESULTS}/logs/download/{{filename}}.log",
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
        root=directory(f"{RESOURCES}/datasets/{{dataset}}"),
        marker=f"{RESOURCES}/datasets/{{dataset}}.ready.json",
    log:
        f"{RESULTS}/logs/extract/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/extract/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=FROM_ARCHIVE,
    conda:
        CONDA_ENV
    params:
        sha256=lambda wc: DATASETS[wc.dataset].get("sha256"),
    script:
        f"{SCRIPTS}/extract.py"


rule index:
    input:
        marker=lambda wc: dataset_marker(wc.dataset),
    output:
        index=f"{RESULTS}/{{dataset}}/index.csv",
    log:
        f"{RESULTS}/logs/index/{{dataset}}.log",
    conda:
        CONDA_ENV
    params:
        block=lambda wc: dataset_identity(wc.dataset),
        version=VERSION,
    script:
        f"{SCRIPTS}/index.py"
