"""ELPV: real electroluminescence images of solar cells, shipped offline in the PyPI wheel ``elpv-dataset``.

2,624 greyscale 300 x 300 cells cut from 44 modules, two categories by cell type (``mono``, ``poly``), each
rated by experts with a defect probability of 0, 1/3, 2/3 or 1 (Buerhop-Lutz et al. 2018; Deitsch et al.
2019; CC BY-NC-SA 4.0). Image labels only: there are no defect masks.

Written in the MVTec layout: ``<type>/train/good``, ``<type>/test/good`` and ``<type>/test/defect``. A cell
is ``good`` when its probability is 0 and ``defect`` when it is at least ``defect_threshold`` (2/3 by
default: the experts lean to defective); cells in between are left out, so neither side is ambiguous. The
good cells are split into train and test by a seeded permutation; optional caps subsample each part.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ELPV_CATEGORIES = ("mono", "poly")


@dataclass(frozen=True)
class ElpvSpec:
    seed: int = 0
    defect_threshold: float = 2 / 3
    test_good_fraction: float = 0.25
    max_train_good: int | None = None  # per category; None = every remaining good cell
    max_test_good: int | None = None
    max_test_defect: int | None = None

    def __post_init__(self):
        if not 0 < self.defect_threshold <= 1:
            raise ValueError(f"elpv.defect_threshold must be in (0, 1], got {self.defect_threshold}")
        if not 0 < self.test_good_fraction < 1:
            raise ValueError(f"elpv.test_good_fraction must be in (0, 1), got {self.test_good_fraction}")


def elpv_source() -> tuple[Path, list[tuple[str, float, str]]]:
    """The wheel's data folder and its (image path, defect probability, cell type) records."""
    try:
        import elpv_dataset
    except ImportError as err:
        raise ImportError(
            "the ELPV dataset comes from the PyPI wheel elpv-dataset: pip install elpv-dataset "
            "(the project's `test` and `elpv` extras include it)"
        ) from err
    folder = Path(elpv_dataset.__file__).parent / "data"
    records = []
    for line in (folder / "labels.csv").read_text().splitlines():
        if line.strip():
            path, probability, kind = line.split()
            records.append((path, float(probability), kind))
    return folder, records


def _cap(items: list, limit: int | None) -> list:
    return items if limit is None else items[:limit]


def write_elpv(root: str | Path, spec: ElpvSpec) -> dict:
    """Copy the chosen cells into ``root`` (MVTec layout); returns the counts per category and part."""
    folder, records = elpv_source()
    root = Path(root)
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    rng = np.random.default_rng(spec.seed)
    counts = {}
    for category in ELPV_CATEGORIES:
        mine = sorted((p, prob) for p, prob, kind in records if kind == category)
        good = [p for p, prob in mine if prob == 0]
        defect = [p for p, prob in mine if prob >= spec.defect_threshold - 1e-9]
        good = [good[i] for i in rng.permutation(len(good))]
        defect = [defect[i] for i in rng.permutation(len(defect))]
        n_test = int(round(spec.test_good_fraction * len(good)))
        parts = {
            "train/good": sorted(_cap(good[n_test:], spec.max_train_good)),
            "test/good": sorted(_cap(good[:n_test], spec.max_test_good)),
            "test/defect": sorted(_cap(defect, spec.max_test_defect)),
        }
        for part, paths in parts.items():
            target = staging / category / part
            target.mkdir(parents=True, exist_ok=True)
            for path in paths:
                shutil.copyfile(folder / path, target / Path(path).name)
        counts[category] = {part: len(paths) for part, paths in parts.items()}
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return {"spec": asdict(spec), "counts": counts}
