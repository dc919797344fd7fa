"""What the schema cannot say, checked when the workflow is read, before any job: unknown methods, variants
against their method's schema block, anomalib entries, devices, the features block, one-category datasets,
sweeps of unknown datasets and splits that would fail. Every offender at once, with its fix."""

from __future__ import annotations

from ..data import dataset_categories, train_sizes
from ..features.settings import FeatureSettings
from ..runtime.config import VARIANT_KEYS, device_problems, method_block_problems, raise_problems, suggest

# Keys under `methods:` that are settings, not a method's options block.
METHOD_SETTINGS = ["run", "seeds", "threads", "device", "anomalib", "variants", "reuse_fits"]


class PlanChecks:
    """The checks of :class:`~tailedcore.plan.workflow.Plan` (run from its constructor)."""

    def _check(self, check_devices: bool) -> None:
        """What the schema cannot say, before any job runs: every offender at once."""
        config = self.config
        known = self.fitted_methods + self.rule_methods
        problems = self._variant_problems()
        for method in self.methods:
            if method not in known:
                problems.append(
                    f"methods.run names {method!r}{suggest(method, known)}, which is neither a package method "
                    f"{self.package_methods} nor a baseline rule file ({self.rule_methods}); add "
                    f"tailedcore/methods/{method}.py or rules/baselines/{method}.smk "
                    "(docs/baselines.md, 'Adding a baseline'), or fix the name"
                )
        problems += method_block_problems(config["methods"], known, METHOD_SETTINGS)
        if self.anomalib_entries:
            from ..baselines.anomalib_bridge import entry_problems

            taken = self.package_methods + [m for m in self.rule_methods if m not in self.anomalib_entries]
            problems += entry_problems(list(self.anomalib_entries.values()), self.methods, taken)
        if check_devices:
            problems += device_problems(config)
        try:
            FeatureSettings.parse(config["features"])  # what every job rebuilds from its params
        except ValueError as err:
            problems.append(f"the config's features block: {err}")
        for name, block in self.datasets.items():
            categories = dataset_categories(block)
            if len(categories) < 2:
                problems.append(
                    f"dataset {name!r} has one category ({categories}): the long-tailed setting trains ONE "
                    "detector on the union of several classes, some of them cut to a few images (the tail) and "
                    "the others noisy (the head); with one class there is neither a tail nor a head. List two "
                    "or more categories (kind folder: one folder each)"
                )
        for base in self.sweep.get("datasets", []):
            if base not in self.datasets:
                problems.append(f"sweep.datasets names {base!r}, which is not a configured dataset")
        problems += self._split_problems()
        raise_problems(problems, "the config")

    def _variant_problems(self) -> list[str]:
        """A variant changes a package method's options: its name is new, ``of`` names a package method and
        every other key is an option of that method, checked against the method's block in the schema."""
        import jsonschema
        import yaml

        schema = yaml.safe_load((self.basedir / "workflow" / "schemas" / "config.schema.yaml").read_text())
        blocks = schema["properties"]["methods"]["properties"]
        problems = []
        for name, variant in self.variants.items():
            where = f"methods.variants.{name}"
            if name in self.package_methods + self.rule_methods:
                problems.append(f"{where}: {name!r} is already a method; give the variant a name of its own")
            base = variant["of"]
            if base not in self.package_methods:
                problems.append(
                    f"{where}.of is {base!r}{suggest(base, self.package_methods)}: a variant changes a package "
                    f"method ({', '.join(self.package_methods)})"
                )
                continue
            if base not in blocks:
                continue  # a method added as tailedcore/methods/<name>.py: its dataclass checks the keys in the job
            options = {k: v for k, v in variant.items() if k not in VARIANT_KEYS}
            block = {**blocks[base], "$defs": schema.get("$defs", {})}
            for error in jsonschema.Draft202012Validator(block).iter_errors(options):
                at = ".".join(str(part) for part in error.absolute_path)
                problems.append(f"{where}{'.' + at if at else ''}: {error.message} (an option of {base})")
        if self.ablation_methods and self.ablation_reference not in self.methods:
            problems.append(
                f"ablation.reference is {self.ablation_reference!r}, which methods.run does not run: the variants "
                f"{self.ablation_methods[1:]} are compared with it; add it to methods.run or name another"
            )
        return problems

    def _split_problems(self) -> list[str]:
        """Splits that would fail, for the datasets whose class sizes are known before any job runs (synthetic,
        a folder of your own): the dry run says what the split jobs would (`snakemake check` does it for all)."""
        from ..data.longtail import SplitRules, size_problems

        splits, problems = self.config["splits"], []
        for name, block in self.datasets.items():
            sizes = train_sizes(block) if len(dataset_categories(block)) > 1 else None
            if not sizes or (splits["source"] == "official" and block["kind"] in ("mvtec", "visa")):
                continue
            rules = SplitRules.for_dataset(block, splits)
            problems += [f"dataset {name!r}: {p}" for p in size_problems(sizes, self.tails, self.seeds, rules)]
        return problems
