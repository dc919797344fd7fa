# Helpers and wildcard constraints only; no rules here.
import re
from pathlib import Path

# Light imports only: parsing the workflow must not import torch.
from tailedcore import __version__ as VERSION  # a params: entry of every compute rule: a release reruns them
from tailedcore.data import dataset_categories, folder_fingerprint, folder_has_masks
from tailedcore.data.images import Geometry

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
MODEL_SEEDS = config["methods"]["seeds"]
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
            f"rule file ({RULE_METHODS}); add tailedcore/methods/{_method}.py or rules/baselines/{_method}.smk "
            "(README, 'Adding a baseline'), or fix the name"
        )
from tailedcore.config import FEATURE_RUNTIME_KEYS, ConfigError, device_problems, method_block_problems

METHOD_SETTINGS = ["run", "seeds", "threads", "device"]
_problems = method_block_problems(config["methods"], PACKAGE_METHODS + RULE_METHODS, METHOD_SETTINGS)
# cuda without a GPU is reported before any job, when the jobs run on this machine (a cluster's run where
# they are scheduled)
if workflow.is_main_process and workflow.local_exec:
    _problems += device_problems(config)
raise_problems(_problems, "the config")

BACKBONE = config["features"]["backbone"]

# Checks that need more than the schema, before any job runs.
try:
    GEOMETRY = Geometry.from_features(config["features"])
except ValueError as _err:
    raise ConfigError(f"the config's features block: {_err}") from None
for _name, _block in DATASETS.items():
    _categories = dataset_categories(_block)
    if len(_categories) < 2:
        raise ConfigError(
            f"dataset {_name!r} has one category ({_categories}): the long-tailed setting trains ONE detector on "
            "the union of several classes, some of them cut to a few images (the tail) and the others noisy "
            "(the head); with one class there is neither a tail nor a head. List two or more categories "
            "(kind folder: one folder each)"
        )

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


# Every per-run file, one template each (a run = dataset, tail, split seed, model seed, method): the rules
# write them, and the tables, figures and runtime table read them through these templates only.
_RUN = "{{tail}}/seed{{seed}}/model{{model_seed}}/{method}"  # a str.format template: {method} filled in
RUN_PATHS = {
    "scores": f"{RESULTS}/{{{{dataset}}}}/scores/{_RUN}.npz",
    "report": f"{RESULTS}/{{{{dataset}}}}/scores/{_RUN}.json",
    "metrics": f"{RESULTS}/{{{{dataset}}}}/metrics/{_RUN}.csv",
    "fit_log": f"{RESULTS}/logs/fit_score/{{{{dataset}}}}/{_RUN}.log",
    "fit_benchmark": f"{RESULTS}/benchmarks/fit_score/{{{{dataset}}}}/{_RUN}.tsv",
    "evaluate_log": f"{RESULTS}/logs/evaluate/{{{{dataset}}}}/{_RUN}.log",
    "evaluate_benchmark": f"{RESULTS}/benchmarks/evaluate/{{{{dataset}}}}/{_RUN}.tsv",
}


def run_path(kind, method="{method}"):
    """The template of a per-run file, for one method or the {method} wildcard (README, "Adding a baseline")."""
    return RUN_PATHS[kind].format(method=method)


MANIFEST = f"{RESULTS}/{{dataset}}/splits/{{tail}}/seed{{seed}}.csv"


def run_files(kind, dataset, tails=None, seeds=None, model_seeds=None, methods=None):
    """Every per-run file of one kind for a dataset: tails x split seeds x model seeds x methods."""
    return expand(
        run_path(kind),
        dataset=dataset,
        tail=tails or TAILS,
        seed=seeds or SEEDS,
        model_seed=model_seeds or MODEL_SEEDS,
        method=methods or METHODS,
    )


BENCHMARKS = {
    "synthetic_dataset": f"{RESULTS}/benchmarks/synthetic_dataset/{{dataset}}.tsv",
    "extract": f"{RESULTS}/benchmarks/extract/{{dataset}}.tsv",
    "features": f"{RESULTS}/benchmarks/features/{{dataset}}/{{backbone}}/{{category}}.tsv",
    "fit_score": run_path("fit_benchmark"),
    "evaluate": run_path("evaluate_benchmark", method="all"),
}


def runtime_inputs(wildcards):
    """Every benchmark file of a dataset, by stage (the runtime table's inputs)."""
    dataset, kind = wildcards.dataset, DATASETS[wildcards.dataset]["kind"]
    inputs = {
        "features": expand(BENCHMARKS["features"], dataset=dataset, backbone=BACKBONE, category=categories(dataset)),
        "fit_score": run_files("fit_benchmark", dataset),
        "evaluate": run_files("evaluate_benchmark", dataset, methods=["all"]),
    }
    if kind == "synthetic":
        inputs["synthetic_dataset"] = BENCHMARKS["synthetic_dataset"].format(dataset=dataset)
    elif kind in ("mvtec", "visa") and "path" not in DATASETS[dataset]:
        inputs["extract"] = BENCHMARKS["extract"].format(dataset=dataset)
    return inputs


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
    identity = {"kind": block["kind"], "categories": categories(dataset), "synthetic": block.get("synthetic", {})}
    if block["kind"] == "elpv":
        identity["elpv"] = block.get("elpv", {})
    if "masks" in block:
        identity["masks"] = block["masks"]
    return identity


def category_identity(dataset, category):
    """What defines one category's index: the dataset's identity and, for a folder of your own, the names,
    sizes and modification times of its files (adding, removing or changing one rebuilds that category)."""
    block = DATASETS[dataset]
    identity = {**dataset_identity(dataset), "category": category}
    if is_given_folder(block):
        identity["files"] = folder_fingerprint(block["path"], category)
    return identity


def has_pixel_labels(dataset):
    """False for datasets with image labels only: no pixel metrics, tables or ground-truth panels."""
    return folder_has_masks(DATASETS[data_of(dataset)])


# Knobs that only choose where or how fast the numbers are computed: never a `params:` entry (a change
# must not rerun anything); scripts read them from `snakemake.config`.
RUNTIME_KEYS = ("threads", *FEATURE_RUNTIME_KEYS)


def feature_params():
    """The features block without its runtime knobs: every key here changes numbers."""
    return {k: v for k, v in config["features"].items() if k not in RUNTIME_KEYS}


def split_params():
    """What decides a split's content (not which tails and seeds are run, nor where manifests come from)."""
    return {k: config["splits"].get(k) for k in ("source", "exclude_injected_from_test", "rules")}


def geometry_params():
    """The config keys that decide the geometry (coverage depends on these and on gt_rule only)."""
    return {k: config["features"].get(k) for k in ("geometry", "resize", "crop", "size")}


def is_given_folder(block):
    """A dataset read from a folder the user gives (not generated by a rule, not downloaded)."""
    return block["kind"] not in ("synthetic", "elpv") and "path" in block


def datasets_where(predicate):
    """A wildcard regex matching exactly the configured datasets for which predicate(block) holds."""
    names = [name for name, block in DATASETS.items() if predicate(block)]
    return "|".join(map(re.escape, names)) if names else "(?!)"


SYNTHETIC = datasets_where(lambda b: b["kind"] == "synthetic")
ELPV = datasets_where(lambda b: b["kind"] == "elpv")
GIVEN_FOLDER = datasets_where(is_given_folder)
FROM_ARCHIVE = datasets_where(lambda b: b["kind"] in ("mvtec", "visa") and "path" not in b)


def split_inputs(wildcards):
    inputs = {"index": index_file(wildcards)}
    if uses_official_splits(wildcards.dataset):
        folder = f"{RESOURCES}/official_splits/{wildcards.dataset}/{wildcards.tail}/seed{wildcards.seed}"
        inputs.update(prune=f"{folder}/prune_good.txt", inject=f"{folder}/inject_defects.txt")
    return inputs


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


def category_index(dataset, category):
    return f"{RESULTS}/{data_of(dataset)}/index/{category}.csv"


def feature_files(wildcards):
    folder = feature_folder(wildcards.dataset)
    return [
        f"{folder}/{c}.{part}"
        for c in categories(wildcards.dataset)
        for part in ("patches.npy", "global.npy", "ids.json")
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
            "image_auroc_ci.tex",
            "significance.csv",
            "significance.md",
            "tidy.csv",
            "extra_metrics.csv",
            "per_class.csv",
            "vs_paper.csv",
            "runtime.csv",
        )
    ]
    tables += [
        f"{RESULTS}/tables/{dataset}_pixel_auroc{suffix}"
        for dataset in DATASETS
        if has_pixel_labels(dataset)
        for suffix in (".csv", ".tex", "_ci.tex", ".md", "_per_seed.csv")
    ]
    summaries = [f"{RESULTS}/{dataset}/summary.md" for dataset in DATASETS]
    paired = [
        f"{RESULTS}/figures/{dataset}/paired_{metric}.{ext}"
        for dataset in DATASETS
        for metric in (["image_auroc", "pixel_auroc"] if has_pixel_labels(dataset) else ["image_auroc"])
        for ext in ("png", "svg")
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
    return summaries + tables + paired + figures + sweeps


wildcard_constraints:
    dataset="[a-z][a-z0-9_]*",
    tail="pareto|step_k[0-9]+",
    seed="[0-9]+",
    model_seed="[0-9]+",
    method="[a-z][a-z0-9_]*",
    category="[A-Za-z0-9_]+",
    backbone="[a-z0-9_]+",
