# TailedCore benchmark: noisy long-tailed unified anomaly detection, from data to the paper's tables.
#   snakemake --cores 8 --resources gpu=1                                  the paper run (config/config.yaml)
#   snakemake --cores 2 --configfile config/quickstart.yaml                offline quickstart (synthetic data)
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

# The package `tailedcore` is importable in every job from this checkout, whether it was pip-installed or
# not: conda environments (--sdm conda), cluster jobs and the local venv alike.
from tailedcore.runtime.config import put_on_pythonpath

put_on_pythonpath(workflow.basedir)


# The paper config is the default; a --configfile replaces it instead of being merged into it.
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# The config files of this run, for the exact rebuild command a job prints when it finds a damaged file.
from tailedcore.runtime.config import share_configfiles

share_configfiles(workflow.config_settings.configfiles or [Path(workflow.basedir, "config", "config.yaml")])

# Every schema problem in a few lines (key, allowed keys or values, "did you mean"), then the defaults.
from tailedcore.runtime.config import raise_problems, schema_problems

raise_problems(schema_problems(config, Path(workflow.basedir, "workflow/schemas/config.schema.yaml")), "the config")
validate(config, schema="workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/splits.smk"
include: "rules/features.smk"
include: "rules/methods.smk"
include: "rules/evaluate.smk"
include: "rules/tables.smk"


# Baselines added as rules: every rules/baselines/<method>.smk is included, and writes the score files of
# the method <method> (docs/baselines.md, "Adding a baseline").
for _baseline in BASELINE_RULE_FILES:

    include: _baseline


rule all:
    default_target: True
    input:
        all_tables(),
