"""Index of the stage functions (kept for old imports): one module per rule file under
:mod:`tailedcore.stages`, the score contract in :mod:`tailedcore.scores`.

| rule file            | module                        | functions                                               |
|----------------------|-------------------------------|---------------------------------------------------------|
| rules/data.smk       | tailedcore.stages.data        | make_synthetic, make_elpv, mark_given_folder,            |
|                      |                               | build_category_index, build_index, check_coverage,       |
|                      |                               | summarise_dataset                                        |
| rules/splits.smk     | tailedcore.stages.splits      | make_split                                               |
| rules/features.smk   | tailedcore.stages.features    | extract_features                                         |
| rules/methods.smk    | tailedcore.stages.methods     | run_method                                               |
| rules/evaluate.smk   | tailedcore.stages.evaluate    | evaluate                                                 |
| rules/tables.smk     | tailedcore.stages.tables      | make_tables, make_figures, make_noise_sweep              |
| rules/baselines/*    | tailedcore.scores             | load_split, write_scores, SCORE_KEYS                     |
"""

from .scores import SCORE_KEYS, load_split, write_scores
from .stages.data import (
    build_category_index,
    build_index,
    check_coverage,
    make_elpv,
    make_synthetic,
    mark_given_folder,
    summarise_dataset,
)
from .stages.evaluate import evaluate
from .stages.features import extract_features
from .stages.methods import run_method
from .stages.splits import make_split
from .stages.tables import make_figures, make_noise_sweep, make_tables

__all__ = [
    "SCORE_KEYS",
    "build_category_index",
    "build_index",
    "check_coverage",
    "evaluate",
    "extract_features",
    "load_split",
    "make_elpv",
    "make_figures",
    "make_noise_sweep",
    "make_split",
    "make_synthetic",
    "make_tables",
    "mark_given_folder",
    "run_method",
    "summarise_dataset",
    "write_scores",
]
