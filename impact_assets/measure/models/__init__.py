"""The six measurement models. Importing this package registers them in ``MODEL_REGISTRY``.

statsmodels, scikit-learn and ``scipy.stats`` are imported inside the functions that use them,
not at module level: a process that only loads the pipeline (the Dagster CLI, a code server, a
webserver) and leaves model fitting to worker processes saves about 2 s of imports and of
interpreter shutdown. Python caches the modules, so the import inside a fit costs nothing after
the first one.
"""

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
