# The plan's names for the rule files, one block per module of tailedcore/plan/ (unit tested there); this file
# binds them and sets the wildcard constraints. No rules here.
from pathlib import Path

# Light imports only: parsing the workflow must not import torch.
from tailedcore import __version__ as VERSION  # a params: entry of every compute rule: a release reruns them
from tailedcore.reporting.paper import coreset_departure  # the captions' note when the coreset ratio is not the paper's
from tailedcore.plan.workflow import WILDCARD_CONSTRAINTS, Plan, conda_env_file, is_given_folder

SCRIPTS = str(Path(workflow.basedir, "workflow", "scripts"))
# The environment of every rule for `--sdm conda` (pinned to the tested versions): with faiss-gpu when a
# block may use the GPU, else faiss-cpu; the package itself is importable there because the Snakefile puts
# the checkout on PYTHONPATH.
CONDA_ENV = str(Path(workflow.basedir, "envs", conda_env_file(config)))

# tailedcore/plan/workflow.py and checks.py: the config's lists, checked (cuda without a GPU is reported before
# any job when the jobs run on this machine; a cluster's run where they are scheduled)
PLAN = Plan(config, workflow.basedir, check_devices=workflow.is_main_process and workflow.local_exec)
DATASETS, TAILS, SEEDS, MODEL_SEEDS = PLAN.datasets, PLAN.tails, PLAN.seeds, PLAN.model_seeds
METHODS, FITTED_METHODS, BASELINE_RULE_FILES = PLAN.methods, PLAN.fitted_methods, PLAN.baseline_rule_files
ANOMALIB = PLAN.anomalib_entries  # methods.anomalib by name: rules/baselines/anomalib.smk
ABLATION_REFERENCE, ABLATION_METHODS = PLAN.ablation_reference, PLAN.ablation_methods
SWEEP, SWEEP_POINTS = PLAN.sweep, PLAN.sweep_points
# the rules' params
feature_params, split_params, geometry_params = PLAN.feature_params, PLAN.split_params, PLAN.geometry_params
method_options, method_class, method_labels = PLAN.method_options, PLAN.method_class, PLAN.method_labels
paper_names, gpu_request = PLAN.paper_names, PLAN.gpu_request

# tailedcore/plan/paths.py: every path template and the lookups made with them
PATHS, run_path, rule_log = PLAN.paths, PLAN.run_path, PLAN.rule_log
table_file, figure_file = PLAN.table_file, PLAN.figure_file
run_files, runtime_inputs, provenance_files = PLAN.run_files, PLAN.runtime_inputs, PLAN.provenance_files
dataset_marker, archive_path, index_file = PLAN.dataset_marker, PLAN.archive_path, PLAN.index_file
feature_folder, category_index, feature_files = PLAN.feature_folder, PLAN.category_index, PLAN.feature_files
split_inputs = PLAN.split_inputs

# tailedcore/plan/datasets.py: which data a dataset uses, what defines it, which rule makes it
dataset_block, categories, compare_with = PLAN.dataset_block, PLAN.categories, PLAN.compare_with
dataset_identity, category_identity = PLAN.dataset_identity, PLAN.category_identity
uses_official_splits = PLAN.uses_official_splits
SYNTHETIC = PLAN.datasets_where(lambda b: b["kind"] == "synthetic")
ELPV = PLAN.datasets_where(lambda b: b["kind"] == "elpv")
GIVEN_FOLDER = PLAN.datasets_where(is_given_folder)
FROM_ARCHIVE = PLAN.datasets_where(lambda b: b["kind"] in ("mvtec", "visa") and "path" not in b)

# tailedcore/plan/targets.py: rule all's files and the outputs shown in the HTML report (path, caption, labels)
all_tables, in_report = PLAN.all_tables, PLAN.in_report
table_report, figure_report = PLAN.table_report, PLAN.figure_report


wildcard_constraints:
    **WILDCARD_CONSTRAINTS,
