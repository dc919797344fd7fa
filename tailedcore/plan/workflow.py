"""The workflow's plan: one :class:`Plan` built from the validated config by ``rules/common.smk``, which binds
the names the rule files use. Its parts live in the modules of this package, one concern each:
:mod:`.checks` (what the schema cannot say), :mod:`.paths` (every path template and lookup),
:mod:`.datasets`, :mod:`.targets` (`rule all` and the report) and :mod:`.estimate` (the time estimate);
this module holds the config's lists and the rules' params. Unit tested; nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from ..features.settings import GEOMETRY_KEYS
from ..runtime.config import FEATURE_RUNTIME_KEYS, resolve_method
from .checks import PlanChecks
from .datasets import PlanDatasets, is_given_folder
from .paths import PlanPaths
from .targets import PlanTargets

__all__ = ["RUNTIME_KEYS", "WILDCARD_CONSTRAINTS", "Plan", "conda_env_file", "is_given_folder"]

# Knobs that only choose where or how fast the numbers are computed: never a `params:` entry (a change must
# not rerun anything); scripts read them from `snakemake.config`.
RUNTIME_KEYS = ("threads", *FEATURE_RUNTIME_KEYS)
WILDCARD_CONSTRAINTS = {
    "dataset": "[a-z][a-z0-9_]*",
    "tail": "pareto|step_k[0-9]+",
    "seed": "[0-9]+",
    "model_seed": "[0-9]+",
    "method": "[a-z][a-z0-9_]*",
    "category": "[A-Za-z0-9_]+",
    "backbone": "[a-z0-9_]+",
}


def conda_env_file(config: dict) -> str:
    """envs/<this> for `--sdm conda`: the faiss-gpu environment when features or methods may use the GPU
    (device auto or cuda), else the faiss-cpu one (the two differ in that one package)."""
    uses_gpu = any(config[block]["device"] != "cpu" for block in ("features", "methods"))
    return "tailedcore-gpu.yaml" if uses_gpu else "tailedcore.yaml"


def package_methods(basedir) -> list[str]:
    """Methods with a class in tailedcore/methods/<name>.py (fitted by rule fit_score)."""
    folder = Path(basedir, "tailedcore", "methods")
    return sorted(p.stem for p in folder.glob("*.py") if p.stem not in ("__init__", "base"))


def baseline_rule_files(basedir) -> list[str]:
    """Methods added as rule files rules/baselines/<name>.smk (they write their score files themselves)."""
    return sorted(str(p) for p in Path(basedir, "rules", "baselines").glob("*.smk"))


class Plan(PlanChecks, PlanPaths, PlanDatasets, PlanTargets):
    """Everything the rules look up, from the validated config and the workflow's folder. ``check_devices``:
    report ``cuda`` without a GPU (when the jobs run on this machine)."""

    def __init__(self, config: dict, basedir, check_devices: bool = False):
        self.config = config
        self.basedir = Path(basedir)
        self.results, self.resources = config["results"], config["resources_dir"]
        self.datasets = config["datasets"]
        self.tails, self.seeds = config["splits"]["tails"], config["splits"]["seeds"]
        self.methods, self.model_seeds = config["methods"]["run"], config["methods"]["seeds"]
        self.backbone = config["features"]["backbone"]
        self.package_methods = package_methods(basedir)
        self.baseline_rule_files = baseline_rule_files(basedir)
        # rules/baselines/anomalib.smk runs every entry of methods.anomalib, each a method of its own
        self.anomalib_entries = {e["name"]: e for e in config["methods"].get("anomalib", [])}
        self.rule_methods = [Path(p).stem for p in self.baseline_rule_files if Path(p).stem != "anomalib"]
        self.rule_methods += list(self.anomalib_entries)
        # methods.variants: a package method with other options, a method of its own (docs/ablation.md)
        self.variants = config["methods"].get("variants", {})
        self.fitted_methods = self.package_methods + list(self.variants)  # the methods rule fit_score fits
        # the ablation table: the reference and every run variant, when one runs
        self.ablation_reference = config.get("ablation", {}).get("reference", "tailedcore")
        run_variants = [m for m in self.methods if m in self.variants]
        self.ablation_methods = [self.ablation_reference, *run_variants] if run_variants else []
        self.sweep = config["sweep"]
        # a sweep point is a derived dataset: the base dataset's images, index and features at another ratio
        self.sweep_points = {
            f"{base}_nr{round(1000 * ratio):04d}": (base, ratio)
            for base in self.sweep.get("datasets", [])
            for ratio in self.sweep.get("noise_ratios", [])
        }
        self.run_paths, self.paths = self.templates(self.results, self.resources)
        self._check(check_devices)

    # ----------------------------------------------------------------------------------------- params
    def feature_params(self) -> dict:
        """The features block without its runtime knobs: every key here changes numbers. Kept in the config's
        spelling and order (Snakemake reruns a job when the text of its params changes); the job parses it back
        into :class:`~tailedcore.features.settings.FeatureSettings` (:mod:`tailedcore.stages.settings`)."""
        return {k: v for k, v in self.config["features"].items() if k not in RUNTIME_KEYS}

    def split_params(self) -> dict:
        """What decides a split's content (not which tails and seeds are run, nor where manifests come from)."""
        return {k: self.config["splits"].get(k) for k in ("source", "exclude_injected_from_test", "rules")}

    def geometry_params(self) -> dict:
        """The config keys that decide the geometry (coverage depends on these and on gt_rule only)."""
        return {k: self.config["features"].get(k) for k in GEOMETRY_KEYS}

    def paper_names(self) -> dict:
        """Our methods that regenerate a row the paper quotes (an anomalib entry's ``paper_row``)."""
        return {name: e["paper_row"] for name, e in self.anomalib_entries.items() if e.get("paper_row")}

    def method_options(self, method: str) -> dict:
        """A method's options block; a variant's: its method's block with the variant's keys over it."""
        return resolve_method(self.config["methods"], method)[1]

    def method_class(self, method: str) -> str:
        """The package method that fits ``method`` (itself, or the method a variant changes)."""
        return resolve_method(self.config["methods"], method)[0]

    def method_labels(self) -> dict:
        """Each run method's name in the ablation table: a variant's label, else its name."""
        return {m: self.variants.get(m, {}).get("label", m) for m in self.methods}

    def gpu_request(self, block: str) -> int:
        """1 when the config block (features, methods) may use the GPU: the job then holds `--resources gpu=1`."""
        return 0 if self.config[block]["device"] == "cpu" else 1
