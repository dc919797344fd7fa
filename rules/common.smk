# The plan's names for the rule files: path templates, lookups and config checks live in tailedcore/plan/workflow.py
# (unit tested); this file binds them and sets the wildcard constraints. No rules here.
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

# cuda without a GPU is reported before any job when the jobs run on this machine (a cluster's run where
# they are scheduled)
PLAN = Plan(config, workflow.basedir, check_devices=workflow.is_main_process and workflow.local_exec)

DATASETS = PLAN.datasets
TAILS, SEEDS, METHODS, MODEL_SEEDS = PLAN.tails, PLAN.seeds, PLAN.methods, PLAN.model_seeds
FITTED_METHODS, BASELINE_RULE_FILES = PLAN.fitted_methods, PLAN.baseline_rule_files
BACKBONE, SWEEP, SWEEP_POINTS = PLAN.backbone, PLAN.sweep, PLAN.sweep_points
MANIFEST, INDEX, BENCHMARKS, PATCH_TRUTH = PLAN.manifest, PLAN.index, PLAN.benchmarks, PLAN.patch_truth
PATHS, table_file, figure_file, rule_log = PLAN.paths, PLAN.table_file, PLAN.figure_file, PLAN.rule_log

run_path, run_files, runtime_inputs = PLAN.run_path, PLAN.run_files, PLAN.runtime_inputs
data_of, dataset_block, categories = PLAN.data_of, PLAN.dataset_block, PLAN.categories
dataset_identity, category_identity = PLAN.dataset_identity, PLAN.category_identity
has_pixel_labels, uses_official_splits = PLAN.has_pixel_labels, PLAN.uses_official_splits
compare_with = PLAN.compare_with
feature_params, split_params, geometry_params = PLAN.feature_params, PLAN.split_params, PLAN.geometry_params
method_options, method_class, method_labels = PLAN.method_options, PLAN.method_class, PLAN.method_labels
gpu_request, all_tables = PLAN.gpu_request, PLAN.all_tables
ABLATION_REFERENCE, ABLATION_METHODS = PLAN.ablation_reference, PLAN.ablation_methods
provenance_files = PLAN.provenance_files
ANOMALIB = PLAN.anomalib_entries  # methods.anomalib by name: rules/baselines/anomalib.smk
paper_names = PLAN.paper_names
dataset_marker, archive_path, index_file = PLAN.dataset_marker, PLAN.archive_path, PLAN.index_file
feature_folder, category_index, feature_files = PLAN.feature_folder, PLAN.category_index, PLAN.feature_files
split_inputs, datasets_where = PLAN.split_inputs, PLAN.datasets_where

SYNTHETIC = datasets_where(lambda b: b["kind"] == "synthetic")
ELPV = datasets_where(lambda b: b["kind"] == "elpv")
GIVEN_FOLDER = datasets_where(is_given_folder)
FROM_ARCHIVE = datasets_where(lambda b: b["kind"] in ("mvtec", "visa") and "path" not in b)

# outputs shown in the HTML report (path, caption, category, labels)
in_report, table_report, figure_report = PLAN.in_report, PLAN.table_report, PLAN.figure_report


wildcard_constraints:
    **WILDCARD_CONSTRAINTS,
