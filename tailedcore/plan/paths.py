"""Where every file of the workflow lives: one template per file, in Snakemake's own spelling (wildcards in
single braces), under the config's two roots (``results`` and ``resources_dir``), and the lookups the rules
make with them. A run = (dataset, tail, split seed, model seed, method): its files have a template in
:data:`RUN_TEMPLATES`; every other file one in :data:`TEMPLATES`; tables, figures and logs theirs through
:meth:`PlanPaths.table_file`, :meth:`PlanPaths.figure_file` and :meth:`PlanPaths.rule_log`. No rule file
spells a path of its own (a house test checks)."""

from __future__ import annotations

from pathlib import Path

from snakemake.io import expand

RUN = "{tail}/seed{seed}/model{model_seed}/{method}"
RUN_TEMPLATES = {
    "scores": "{results}/{dataset}/scores/{run}.npz",
    "report": "{results}/{dataset}/scores/{run}.json",
    "provenance": "{results}/{dataset}/scores/{run}.bank.npz",
    "diagnostics": "{results}/{dataset}/diagnostics/{run}.csv",
    "diagnose_log": "{results}/logs/diagnose/{dataset}/{run}.log",
    "metrics": "{results}/{dataset}/metrics/{run}.csv",
    "fit_log": "{results}/logs/fit_score/{dataset}/{run}.log",
    "fit_benchmark": "{results}/benchmarks/fit_score/{dataset}/{run}.tsv",
    "evaluate_log": "{results}/logs/evaluate/{dataset}/{run}.log",
    "evaluate_benchmark": "{results}/benchmarks/evaluate/{dataset}/{run}.tsv",
    "diagnose_benchmark": "{results}/benchmarks/diagnose/{dataset}/{run}.tsv",
}
TEMPLATES = {
    "dataset_root": "{resources}/datasets/{dataset}",
    "dataset_marker": "{resources}/datasets/{dataset}.ready.json",
    "archive": "{resources}/downloads/{filename}",
    "official_list": "{resources}/official_splits/{dataset}/{tail}/seed{seed}/{name}.txt",
    "category_index": "{results}/{dataset}/index/{category}.csv",
    "index": "{results}/{dataset}/index.csv",  # rule index writes it; a sweep point reads its base's
    "coverage": "{results}/{dataset}/coverage/{category}.csv",
    "check": "{results}/{dataset}/check.md",
    "summary": "{results}/{dataset}/summary",  # .csv and .md
    "features": "{results}/{dataset}/features/{backbone}/{category}",  # .patches.npy, .global.npy, .ids.json
    "manifest": "{results}/{dataset}/splits/{tail}/seed{seed}.csv",
    "split_stats": "{results}/{dataset}/splits/{tail}/seed{seed}.stats.csv",
    "patch_truth": "{results}/{dataset}/diagnostics/{tail}/seed{seed}/patch_truth.npz",
    "tables": "{results}/tables/{dataset}_",  # + the table's name
    "figures": "{results}/figures/{dataset}/",  # + the figure's name
    # the dataset rules' benchmarks under resources/, with their outputs: wiping results/ never redoes them
    "synthetic_dataset_benchmark": "{resources}/benchmarks/synthetic_dataset/{dataset}.tsv",
    "extract_benchmark": "{resources}/benchmarks/extract/{dataset}.tsv",
    "features_benchmark": "{results}/benchmarks/features/{dataset}/{backbone}/{category}.tsv",
}


def fill(template: str, **values) -> str:
    """``template`` with some wildcards filled in (the others stay wildcards)."""
    for key, value in values.items():
        template = template.replace(f"{{{key}}}", str(value))
    return template


class PlanPaths:
    """The path lookups of :class:`~tailedcore.plan.workflow.Plan` (which sets ``paths``, ``run_paths`` and
    the config's lists these read)."""

    @staticmethod
    def templates(results: str, resources: str) -> tuple[dict, dict]:
        """(the run templates, every other template) under the two roots."""
        roots = {"results": results, "resources": resources}
        run_paths = {kind: fill(t, **roots, run=RUN) for kind, t in RUN_TEMPLATES.items()}
        return run_paths, {name: fill(t, **roots) for name, t in TEMPLATES.items()}

    def path(self, key: str, /, **values) -> str:
        """The template ``paths[key]`` with some wildcards filled in (the others stay wildcards)."""
        return fill(self.paths[key], **values)

    def table_file(self, name: str) -> str:
        """results/tables/{dataset}_<name>."""
        return self.paths["tables"] + name

    def figure_file(self, name: str) -> str:
        """results/figures/{dataset}/<name>."""
        return self.paths["figures"] + name

    def rule_log(self, rule: str, pattern: str = "{dataset}", under: str = "results") -> str:
        """The log of a rule's job: <results or resources>/logs/<rule>/<pattern>.log."""
        return f"{self.results if under == 'results' else self.resources}/logs/{rule}/{pattern}.log"

    def run_path(self, kind: str, method: str = "{method}") -> str:
        """The template of a per-run file, for one method or the {method} wildcard (docs/baselines.md, "Adding a
        baseline")."""
        return self.run_paths[kind].replace("{method}", method)

    def run_files(self, kind, dataset, tails=None, seeds=None, model_seeds=None, methods=None) -> list[str]:
        """Every per-run file of one kind for a dataset: tails x split seeds x model seeds x methods."""
        return expand(
            self.run_path(kind),
            dataset=dataset,
            tail=tails or self.tails,
            seed=seeds or self.seeds,
            model_seed=model_seeds or self.model_seeds,
            method=methods or self.methods,
        )

    def runtime_inputs(self, wildcards) -> dict:
        """Every benchmark file of a dataset, by stage (the runtime table's inputs)."""
        dataset = wildcards.dataset
        kind = self.datasets[dataset]["kind"]
        inputs = {
            "features": expand(
                self.paths["features_benchmark"],
                dataset=dataset,
                backbone=self.backbone,
                category=self.categories(dataset),
            ),
            "fit_score": self.run_files("fit_benchmark", dataset),
            "evaluate": self.run_files("evaluate_benchmark", dataset, methods=["all"]),
            "diagnose": self.run_files("diagnose_benchmark", dataset, methods=["all"]),
        }
        if kind == "synthetic":
            inputs["synthetic_dataset"] = self.path("synthetic_dataset_benchmark", dataset=dataset)
        elif kind in ("mvtec", "visa") and "path" not in self.datasets[dataset]:
            inputs["extract"] = self.path("extract_benchmark", dataset=dataset)
        return inputs

    def dataset_marker(self, dataset: str) -> str:
        return self.path("dataset_marker", dataset=dataset)

    def archive_path(self, dataset: str) -> str:
        block = self.datasets[dataset]
        return block.get("archive") or self.path("archive", filename=block["filename"])

    def index_file(self, wildcards) -> str:
        return self.path("index", dataset=self.data_of(wildcards.dataset))

    def feature_folder(self, dataset: str) -> str:
        return str(Path(self.path("features", dataset=self.data_of(dataset), backbone=self.backbone)).parent)

    def category_index(self, dataset: str, category: str) -> str:
        return self.path("category_index", dataset=self.data_of(dataset), category=category)

    def feature_files(self, wildcards) -> list[str]:
        dataset = self.data_of(wildcards.dataset)
        return [
            self.path("features", dataset=dataset, backbone=self.backbone, category=c) + f".{part}"
            for c in self.categories(wildcards.dataset)
            for part in ("patches.npy", "global.npy", "ids.json")
        ]

    def provenance_files(self, methods: list[str] | None = None) -> list[str]:
        """The provenance templates (other wildcards open) of the package methods among ``methods``: rule
        fit_score writes them; a baseline rule's is optional, found beside its score file by the job."""
        chosen = [m for m in (methods or self.methods) if m in self.fitted_methods]
        return [self.run_path("provenance", method=m) for m in chosen]

    def split_inputs(self, wildcards) -> dict:
        inputs = {"index": self.index_file(wildcards)}
        if self.uses_official_splits(wildcards.dataset):
            split = dict(dataset=wildcards.dataset, tail=wildcards.tail, seed=wildcards.seed)
            inputs.update(
                prune=self.path("official_list", **split, name="prune_good"),
                inject=self.path("official_list", **split, name="inject_defects"),
            )
        return inputs
