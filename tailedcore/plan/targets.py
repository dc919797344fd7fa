"""What the workflow makes: every file of `rule all`, and the outputs shown in the HTML report."""

from __future__ import annotations

TABLE_FILES = (
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
    "cost.csv",
    "cost.md",
    "diagnostics.csv",
    "diagnostics.md",
    "diagnostics_per_category.csv",
    "diagnostics_per_category.md",
)


class PlanTargets:
    """The targets of :class:`~tailedcore.plan.workflow.Plan`."""

    def in_report(self, path: str, caption: str, category: str, **labels):
        """An output shown in the HTML report: ``path`` under ``category``, labelled by its dataset and
        ``labels``, with the caption workflow/report/<caption>.rst (relative to the rule files in rules/)."""
        from snakemake.io import report

        labels = {"dataset": "{dataset}", **labels}
        return report(path, category=category, labels=labels, caption=f"../workflow/report/{caption}.rst")

    def table_report(self, name: str, title: str, caption: str, category: str = "Tables"):
        """The table results/tables/<dataset>_<name>.csv in the report."""
        return self.in_report(self.table_file(f"{name}.csv"), caption, category, table=title)

    def figure_report(self, name: str, title: str, caption: str, tail: str = "all"):
        """The figure results/figures/<dataset>/<name> in the report (per tail type, or "all")."""
        path = self.figure_file(name)
        return self.in_report(path, caption, "Figures", tail=tail, figure=title)

    def all_tables(self) -> list[str]:
        """Every file of `rule all`: summaries, tables, paired-difference figures, per-tail figures, sweeps."""
        datasets = self.datasets

        def table(dataset, name):
            return self.table_file(name).replace("{dataset}", dataset)

        def figure(dataset, name):
            return self.figure_file(name).replace("{dataset}", dataset)

        tables = [table(dataset, name) for dataset in datasets for name in TABLE_FILES]
        tables += [
            table(dataset, f"pixel_auroc{suffix}")
            for dataset in datasets
            if self.has_pixel_labels(dataset)
            for suffix in (".csv", ".tex", "_ci.tex", ".md", "_per_seed.csv")
        ]
        if self.ablation_methods:
            tables += [table(dataset, f"ablation.{ext}") for dataset in datasets for ext in ("csv", "md", "tex")]
        summaries = [self.path("summary", dataset=dataset) + ".md" for dataset in datasets]
        paired = [
            figure(dataset, f"paired_{metric}.{ext}")
            for dataset in datasets
            for metric in (["image_auroc", "pixel_auroc"] if self.has_pixel_labels(dataset) else ["image_auroc"])
            for ext in ("png", "svg")
        ]
        kinds = ["per_class", "anomaly_maps"] + (["tail_sampler"] if "tailedcore" in self.methods else [])
        diagnostics = [
            figure(dataset, f"{name}.{ext}")
            for dataset in datasets
            for name in ("diagnostics", "diagnostics_per_category")
            for ext in ("png", "svg")
        ]
        figures = diagnostics + [
            figure(dataset, f"{kind}_{tail}.{ext}")
            for dataset in datasets
            for kind in kinds
            for tail in self.tails
            for ext in ("png", "svg")
        ]
        sweeps = [
            figure(dataset, f"noise_sweep.{ext}")
            for dataset in self.sweep.get("datasets", [])
            for ext in ("png", "svg")
            if self.sweep.get("noise_ratios")
        ]
        return summaries + tables + paired + figures + sweeps
