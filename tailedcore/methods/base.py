"""The method protocol, the data a method sees, and the registry.

A method is constructed from its validated config block (a typed dataclass) and a seeded
``torch.Generator``; ``fit(train)`` builds its model from training features only (never class labels)
and returns a report; ``score(test)`` returns image scores and patch score maps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from ..runtime.reuse import FitParts, array_digest, computed


@dataclass
class FeatureSet:
    """Features of a set of images, in one order: patches (n, h, w, d) and global embeddings (n, G).

    ``augment(rows, kind)`` returns the patch features (m, h, w, d) of the augmented views of the images at
    ``rows`` (training only; methods that need no views never call it). ``parts``: the parts of a fit other
    fits of the same split computed already (:class:`tailedcore.runtime.reuse.FitParts`; None computes all).
    """

    image_ids: list[str]
    patches: np.ndarray
    global_embeddings: np.ndarray
    augment: Callable[[list[int], str], np.ndarray] | None = None
    parts: FitParts | None = None


@dataclass
class Provenance:
    """Where every memory row of a fitted model comes from, and what its filters decided (docs/architecture.md,
    "Provenance"). Memory row i is patch ``cell[i]`` (y * grid width + x) of training image ``image[i]`` (a row
    of the training FeatureSet), of that image itself (``view`` 0) or of its k-th augmented view (``view`` k).
    The optional arrays cover the whole training pool: the denoising filter's outlier score and decision per
    patch (n, h, w), and the TailSampler's call and class-size estimate per image (n,). ``memory_bank`` is
    False for a model without one (PaDiM): it has no memory rows, which is not a bank of zero rows."""

    image: np.ndarray
    cell: np.ndarray
    view: np.ndarray
    view_kind: str = "none"
    filter_score: np.ndarray | None = None
    filter_kept: np.ndarray | None = None
    tail_predicted: np.ndarray | None = None
    class_size_estimate: np.ndarray | None = None
    memory_bank: bool = True

    @classmethod
    def of_rows(cls, rows: np.ndarray, cells: int, **extra) -> Provenance:
        """Memory rows taken from the flattened (n * cells, d) training patches at ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        return cls(
            (rows // cells).astype(np.int32), (rows % cells).astype(np.int32), np.zeros(len(rows), np.int16), **extra
        )

    @classmethod
    def of_views(
        cls, chosen: np.ndarray, images: list[int], cells: int, view_rows: int, kind: str, own=None
    ) -> Provenance:
        """Memory rows taken from the patches of ``images`` followed by the patches of their views
        (``view_rows`` rows, the views of each image together, in the order of ``images``). ``own``: the rows
        (of the flattened training patches) that the first part holds, when it is not every patch of
        ``images`` (a filtered tail branch)."""
        chosen, images = np.asarray(chosen, dtype=np.int64), np.asarray(images, dtype=np.int64)
        if own is None:
            own = (images[:, None] * cells + np.arange(cells)[None, :]).ravel()
        own = np.asarray(own, dtype=np.int64)
        per_image = view_rows // (cells * len(images)) if len(images) else 0
        if per_image * cells * len(images) != view_rows:
            raise ValueError(f"{view_rows} view rows are not a whole number of views of {len(images)} images")
        from_view = chosen >= len(own)
        image, cell = np.empty(len(chosen), np.int64), np.empty(len(chosen), np.int64)
        view = np.zeros(len(chosen), np.int64)
        image[~from_view], cell[~from_view] = np.divmod(own[chosen[~from_view]], cells)
        if from_view.any():
            grid, cell[from_view] = np.divmod(chosen[from_view] - len(own), cells)  # the view the row lies in
            image[from_view] = images[grid // per_image]
            view[from_view] = 1 + grid % per_image
        return cls(image.astype(np.int32), cell.astype(np.int32), view.astype(np.int16), view_kind=kind)

    @classmethod
    def concat(cls, parts: list[Provenance], **extra) -> Provenance:
        kinds = {p.view_kind for p in parts} - {"none"}
        return cls(
            *(np.concatenate([getattr(p, name) for p in parts]) for name in ("image", "cell", "view")),
            view_kind=kinds.pop() if kinds else "none",
            **extra,
        )


def shared_coreset(
    train: FeatureSet, flat, ratio: float, projection_dim: int, generator, *, rows=None, progress="greedy coreset"
):
    """The greedy coreset of the flattened training patches (of ``rows`` only, when given), through the fit's
    shared parts: PatchCore's is TailedCore's without the filter, SoftPatch's is TailedCore's clean one."""
    from ..samplers.greedy import greedy_coreset

    params = {"ratio": ratio, "projection_dim": projection_dim, "rows": array_digest(rows)}
    return computed(
        train.parts,
        "coreset",
        params,
        generator,
        lambda: greedy_coreset(flat, ratio, projection_dim, generator, rows=rows, progress=progress),
    )


@dataclass
class Scores:
    image_scores: np.ndarray  # (n,) float32, higher = more anomalous
    patch_scores: np.ndarray  # (n, h, w) float32
    nearest: np.ndarray | None = None  # (n, h, w) int32: each patch's nearest memory row (a memory-bank method)


class Method(Protocol):
    """``provenance`` (optional): the :class:`Provenance` of the fitted model, set by ``fit``."""

    name: str

    def fit(self, train: FeatureSet) -> dict: ...

    def score(self, test: FeatureSet) -> Scores: ...


REGISTRY: dict[str, tuple[type, type]] = {}


def register(name: str, config_class: type):
    """Class decorator: make a method available under ``name`` with its config dataclass.

    ``name`` must be the module's name (tailedcore/methods/<name>.py): the workflow finds methods by file.
    """

    def wrap(cls):
        module = cls.__module__.rsplit(".", 1)[-1]
        if cls.__module__.startswith("tailedcore.methods.") and module != name:
            raise ValueError(
                f"method {name!r} is registered in tailedcore/methods/{module}.py; "
                f"name the file {name}.py or register it as {module!r}"
            )
        REGISTRY[name] = (cls, config_class)
        cls.name = name
        return cls

    return wrap


def build_method(name: str, options: dict, generator):
    """Instantiate a registered method from its config block; unknown keys are an error, not ignored."""
    import importlib
    import pkgutil

    from .. import methods

    for module in pkgutil.iter_modules(methods.__path__):  # every tailedcore/methods/<name>.py registers itself
        importlib.import_module(f"{methods.__name__}.{module.name}")

    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; registered methods: {sorted(REGISTRY)}")
    cls, config_class = REGISTRY[name]
    known = {f.name for f in fields(config_class)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"method {name}: unknown options {unknown}; valid options: {sorted(known)}")
    return cls(config_class(**options), generator)
