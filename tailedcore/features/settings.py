"""The config's ``features`` block as one typed object, parsed once.

The plan parses the validated block when the workflow is read (an invalid geometry fails there, before any
job); a rule passes the number-changing keys as its params, in the config's spelling (a change reruns the
job), and its script parses them back with the runtime knobs (:mod:`tailedcore.stages.settings`). Every
stage, the feature cache, the tail views and the evaluation receive this object or its :class:`Geometry`,
never the raw mapping. Light imports only: the plan imports this while the workflow is parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..data.images import Geometry
from ..runtime.config import FEATURE_RUNTIME_KEYS

GEOMETRY_KEYS = ("geometry", "resize", "crop", "size")


@dataclass(frozen=True)
class FeatureSettings:
    """What the feature cache computes (backbone, weights, geometry, dimensions, precision) and how
    (``batch_size``, ``device``: runtime knobs, never a rule's params)."""

    backbone: str = "efficientnet_lite0"
    weights: str | None = None
    geometry: Geometry = field(default_factory=Geometry)
    dtype: str = "float16"  # of the cached patch features; float32 = the original code's precision
    pretrain_dim: int = 1024
    target_dim: int = 1024
    patch_size: int = 3
    batch_size: int = 32
    device: str = "cpu"

    @classmethod
    def parse(cls, block: Mapping, runtime: Mapping | None = None) -> FeatureSettings:
        """``block``: the config's features block or a rule's features params; ``runtime``: where the runtime
        knobs come from when ``block`` lacks them (a script's ``snakemake.config["features"]``). Keys the
        schema fills are optional here; ``threads`` is a job's directive, not a setting."""
        values = {**{k: runtime[k] for k in FEATURE_RUNTIME_KEYS if runtime and k in runtime}, **block}
        known = {f.name for f in fields(cls)} - {"geometry"}
        unknown = sorted(set(values) - known - set(GEOMETRY_KEYS) - {"threads"})
        if unknown:
            raise ValueError(f"unknown features keys {unknown}; known: {sorted(known | set(GEOMETRY_KEYS))}")
        typed = {k: values[k] for k in known if k in values}
        for key in ("pretrain_dim", "target_dim", "patch_size", "batch_size"):
            if key in typed:
                typed[key] = int(typed[key])
        return cls(geometry=Geometry.from_features(values), **typed)

    def as_dict(self) -> dict:
        """Every setting in the config's spelling (the geometry's keys flat), as a run's report records it."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "geometry"}
        return {**out, **self.geometry.as_block()}
