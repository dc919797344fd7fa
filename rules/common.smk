# Helpers and wildcard constraints only; no rules here.
import re
from pathlib import Path

# Light imports only: parsing the workflow must not import torch.
from tailedcore import __version__ as VERSION  # a params: entry of every compute rule: a release reruns them
from tailedcore.data import dataset_categories

SCRIPTS = str(Path(workflow.basedir, "workflow", "scripts"))
# The environment of every rule for `--sdm conda` (pinned to the tested versions); the package itself is
# importable there because the Snakefile puts the checkout on PYTHONPATH.
CONDA_ENV = str(Path(workflow.basedir, "envs", "tailedcore.yaml"))

RESULTS = config["results"]
RESOURCES = config["resources_dir"]
DATASETS = config["datasets"]
TAILS = config["splits"]["tails"]
SEEDS = config["splits"]["seeds"]
METHODS = config["methods"]["run"]
# Methods come from two places: a class registered in tailedcore/methods/<name>.py (fitted by rule
# fit_score), or a rule file rules/baselines/<name>.smk that writes the score files itself.
PACKAGE_METHODS = sorted(
    p.stem for p in Path(workflow.basedir, "tailedcore", "methods").glob("*.py") if p.stem not in ("__init__", "base")
)
BASELINE_RULE_FILES = sorted(str(p) for p in Path(workflow.basedir, "rules", "baselines").glob("*.smk"))
RULE_METHODS = [Path(p).stem for p in BASELINE_RULE_FILES]
for _method in METHODS:
    if _method not in PACKAGE_METHODS and _method not in RULE_METHODS:
        raise ValueError(
            f"methods.run names {_method!r}, which is neither a package method {PACKAGE_METHODS} nor a baseline "
            f"rule file {RULE_METHODS}: add tailedcore/methods/{_method}.py or rules/baselines/{_method}.smk "
            "(README, 'Adding a baseline'), or fix the name"
        )
BACKBONE = config["features"]["backbone"]

SWEEP = config["sweep"]
# A sweep point is a derived dataset: the base dataset's images, index and features at another noise ratio.
SWEEP_POINTS = {
    f"{base}_nr{round(1000 * ratio):04d}": (base, ratio)
    for base in SWEEP.get("datasets", [])
    for ratio in SWEEP.get("noise_ratios", [])
}
for _name, (_base, _ratio) in SWEEP_POINTS.items():
    if _base not in DATASETS:
        raise ValueError(f"sweep.datasets names {_base!r}, which is not a configured dataset")
DATA_OF = {name: base for name, (base, _) in SWEEP_POINTS.items()}


def data_of(dataset):
    """The dataset whose images, index and feature cache a (possibly derived) dataset uses."""
    return DATA_OF.get(dataset, dataset)


def dataset_block(dataset):
    if dataset in SWEEP_POINTS:
        base, ratio = SWEEP_POINTS[dataset]
        return {**DATASETS[base], "noise_ratio": ratio}
    return DATASETS[dataset]


def categories(dataset):
    return dataset_categories(DATASETS[data_of(dataset)])


def dataset_identity(dataset):
    """What defines a dataset's images (not its noise ratio or comparison): a change here rebuilds it."""
    block = DATASETS[dataset]
    return {"kind": block["kind"], "categories": categories(dataset), "synthetic": block.get("synthetic", {})}


def datasets_where(predicate):
    """A wildcard regex matching exactly the configured datasets for which predicate(block) holds."""
    names = [name for name, block in DATASETS.items() if predicate(block)]
    return "|".join(map(re.escape, names)) if names else "(?!)"


SYNTHETIC = datasets_where(lambda b: b["kind"] == "synthetic")
GIVEN_FOLDER = datasets_where(lambda b: b["kind"] != "synthetic" and "path" in b)
FROM_ARCHIVE = datasets_where(lambda b: b["kind"] in ("mvtec", "visa") and "path" not in b)


def uses_official_splits(dataset):
    """Official manifests exist only for MVTec AD and VisA; other datasets always use the generator."""
    if dataset in SWEEP_POINTS:  # official manifests exist only at the paper's noise ratio
        return False
    return config["splits"]["source"] == "official" and DATASETS[dataset]["kind"] in ("mvtec", "visa")


def dataset_marker(dataset):
    return f"{RESOURCES}/datasets/{dataset}.ready.json"


def archive_path(dataset):
    block = DATASETS[dataset]
    return block.get("archive") or f"{RESOURCES}/downloads/{block['filename']}"


def index_file(wildcards):
    return f"{RESULTS}/{data_of(wildcards.dataset)}/index.csv"


def feature_folder(dataset):
    return f"{RESULTS}/{data_of(dataset)}/features/{BACKBONE}"


def feature_files(wildcards):
    folder = feature_folder(wildcards.dataset)
    return [
        f"{folder}/{c}.{part}"
        for c in categories(wildcards.dataset)
        for part in ("patches.npy", "global.npy", "ids.txt")
    ]


def method_options(method):
    return dict(config["methods"].get(method, {}))


def gpu_request(block):
    """1 when the config block (features, methods) may use the GPU: the job then holds `--resources gpu=1`."""
    return 0 if config[block]["device"] == "cpu" else 1


def compare_with(dataset):
    block = DATASETS[dataset]
    return block.get("compare_with", {"mvtec": "mvtecad", "visa": "visa"}.get(block["kind"]))


def all_tables():
    tables = [
        f"{RESULTS}/tables/{dataset}_{name}"
        for dataset in DATASETS
        for name in (
            "image_auroc.csv",
            "image_auroc.tex",
            "image_auroc.md",
            "image_auroc_per_seed.csv",
            "pixel_auroc.csv",
            "pixel_auroc.tex",
            "pixel_auroc.md",
            "pixel_auroc_per_seed.csv",
            "tidy.csv",
            "extra_metrics.csv",
            "per_class.csv",
            "vs_paper.csv",
            "runtime.csv",
        )
    ]
    kinds = ["per_class", "anomaly_maps"] + (["tail_sampler"] if "tailedcore" in METHODS else [])
    figures = [
        f"{RESULTS}/figures/{dataset}/{kind}_{tail}.{ext}"
        for dataset in DATASETS
        for kind in kinds
        for tail in TAILS
        for ext in ("png", "svg")
    ]
    sweeps = (
        [
            f"{RESULTS}/figures/{dataset}/noise_sweep.{ext}"
            for dataset in SWEEP.get("datasets", [])
            for ext in ("png", "svg")
        ]
        if SWEEP.get("noise_ratios")
        else []
    )
    return tables + figures + sweeps


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    tail="pareto|step_k[0-9]+",
    seed="[0-9]+",
    method="[a-z][a-z0-9_]*",
    category="[A-Za-z0-9_]+",
    backbone="[a-z0-9_]+",
