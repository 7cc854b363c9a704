"""The six measurement models. Importing this package registers them in ``MODEL_REGISTRY``."""

from impact_assets.measure.models import (  # noqa: F401  (imports register the models)
    experiment,
    interrupted_time_series,
    matching,
    metrics_approximation,
    subclassification,
    synthetic_control,
)
from impact_assets.measure.models.base import (
    DIAGNOSTIC_KEYS,
    MODEL_REGISTRY,
    Model,
    ModelError,
    ModelFit,
    get_model,
    register_model,
)

__all__ = [
    "DIAGNOSTIC_KEYS",
    "MODEL_REGISTRY",
    "Model",
    "ModelError",
    "ModelFit",
    "get_model",
    "register_model",
]
