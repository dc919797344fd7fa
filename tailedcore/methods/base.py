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


@dataclass
class FeatureSet:
    """Features of a set of images, in one order: patches (n, h, w, d) and global embeddings (n, G).

    ``augment(rows, kind)`` returns the patch features (m, h, w, d) of the augmented views of the images at
    ``rows`` (training only; methods that need no views never call it).
    """

    image_ids: list[str]
    patches: np.ndarray
    global_embeddings: np.ndarray
    augment: Callable[[list[int], str], np.ndarray] | None = None


@dataclass
class Scores:
    image_scores: np.ndarray  # (n,) float32, higher = more anomalous
    patch_scores: np.ndarray  # (n, h, w) float32


class Method(Protocol):
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
