"""A job's settings, parsed once at its entry: a script hands its rule's params (and the config's runtime knobs)
to these, and passes the typed objects to its stage. The plan parsed the same blocks when the workflow was
read, so an invalid value never reaches a job."""

from __future__ import annotations

from collections.abc import Mapping

from ..data.images import Geometry
from ..features.settings import FeatureSettings


def feature_settings(params: Mapping, config: Mapping) -> FeatureSettings:
    """A rule's features params plus the runtime knobs from the config (batch size and device only choose how
    fast, so they are never params and never rerun a job)."""
    return FeatureSettings.parse(params, runtime=config["features"])


def geometry_settings(params: Mapping) -> Geometry:
    """The geometry of a rule's geometry (or features) params."""
    return Geometry.from_features(params)


def evaluation_settings(geometry: Mapping, evaluation: Mapping):
    """How a run is evaluated (an :class:`~tailedcore.evaluation.metrics.EvaluationSpec`): the geometry params
    and the config's evaluation block (pixel metrics asked for; the evaluate stage drops them for a dataset
    without masks)."""
    from ..evaluation.metrics import EvaluationSpec  # scipy: only the jobs that evaluate import it

    return EvaluationSpec.from_config(geometry_settings(geometry), evaluation)
