"""impact-assets: measure, evaluate, allocate and verify business initiatives, on Dagster.

Importing the package has no side effects: no manifest is read and no Dagster instance is made.
The Dagster code location lives in :mod:`impact_assets.definitions`.
"""

from impact_assets.allocate.mock import MockAllocate
from impact_assets.component import PipelineComponent
from impact_assets.config import ConfigError, PipelineConfig, load_config
from impact_assets.contracts import (
    AllocateResult,
    ContractError,
    EvaluateResult,
    MeasureResult,
    ModelType,
    OutcomeReport,
)
from impact_assets.orchestrator import Orchestrator
from impact_assets.registry import build_component, register_component, resolve_component

__version__ = "0.1.0"

__all__ = [
    "AllocateResult",
    "ConfigError",
    "ContractError",
    "EvaluateResult",
    "MeasureResult",
    "MockAllocate",
    "ModelType",
    "Orchestrator",
    "OutcomeReport",
    "PipelineComponent",
    "PipelineConfig",
    "__version__",
    "build_component",
    "load_config",
    "register_component",
    "resolve_component",
]
