"""Load, merge and validate a measure config (measure-spec §2; our surface in ``docs/measure.md``).

:func:`load_measure_config` reads a YAML or JSON file (or takes a dict), deep-merges it over
:data:`~impact_assets.measure.defaults.MEASURE_DEFAULTS` and validates everything that can be
checked without data: section and key names, the source, enrichment and transform names (an
unknown one lists the available names), every typed parameter (errors name the parameter, the
file and the initiative), and dates, which may be quoted strings or YAML dates. The model's own
parameters are checked by :func:`resolve_model` (the model's ``validate_params``), also before
any data are generated or read.

Every problem raises :class:`MeasureConfigError` (a ``ValueError``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from impact_assets.contracts import MIN_SAMPLE_SIZE
from impact_assets.measure.defaults import ENRICHMENT_DEFAULTS, MEASURE_DEFAULTS, deep_merge
from impact_assets.measure.simulator import FunnelParams, Treatment
from impact_assets.yaml_safe import safe_load_text

PHASES = ("pilot", "scale")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?")


class MeasureConfigError(ValueError):
    """A measure config is invalid. The message names the file, the initiative and the field."""

    def __init__(
        self,
        file: Path | str | None,
        field: str | None,
        message: str,
        initiative: str | None = None,
    ):
        self.file = None if file is None else str(file)
        self.field = field
        self.initiative = initiative
        parts = [self.file or "<measure config>"]
        if initiative is not None:
            parts.append(f"initiative {initiative!r}")
        if field:
            parts.append(field)
        super().__init__(": ".join(parts) + f": {message}")


# --------------------------------------------------------------------------- registries of names

#: Source types (``DATA.SOURCE.type``).
SOURCE_TYPES = ("simulator", "file")
#: Enrichment functions (``DATA.ENRICHMENT.FUNCTION``) -> whether ``quality_boost`` applies.
ENRICHMENT_FUNCTIONS: dict[str, bool] = {
    "product_detail_boost": True,
    "quantity_boost": False,
    "probability_boost": False,
}

_TOP_KEYS = ("DATA", "MEASUREMENT", "OUTPUT", "CATALOG_SIMULATOR")
_DATA_KEYS = ("SOURCE", "ENRICHMENT", "TRANSFORM")
_SOURCE_KEYS = ("type", "CONFIG")
_SOURCE_CONFIG_KEYS = (
    "mode",
    "seed",
    "path",
    "scale_path",
    "start_date",
    "end_date",
    "product_id_column",
    "date_column",
    "n_products",
    "storage_path",
)
_FUNCTION_KEYS = ("FUNCTION", "PARAMS")
_MEASUREMENT_KEYS = ("MODEL", "PARAMS", "min_sample_size")


@dataclass(frozen=True)
class MeasureConfig:
    """A loaded, merged and validated measure config.

    ``resolved`` is the merged config as written to the job directory (dates as ``YYYY-MM-DD``
    strings, ``enrichment_start`` copied into ``DATA.TRANSFORM.PARAMS``); the other fields are
    its typed views.
    """

    path: Path | None
    base_dir: Path
    initiative_id: str | None
    resolved: dict[str, Any]
    source_type: str
    source_config: dict[str, Any]
    start_date: pd.Timestamp | None
    end_date: pd.Timestamp | None
    seed: int
    n_products: int
    funnel: FunnelParams
    treatment: Treatment | None
    transform_name: str
    transform_params: dict[str, Any]
    model_name: str
    model_params: dict[str, Any] = field(default_factory=dict)
    #: ``MEASUREMENT.min_sample_size`` (``None``: not set; the contract's 30 applies unless the
    #: manifest sets one).
    min_sample_size: int | None = None
    #: The ``MEASUREMENT.PARAMS`` keys the user wrote (not the merged defaults), sorted.
    user_param_keys: tuple[str, ...] = ()

    def error(self, field_name: str | None, message: str) -> MeasureConfigError:
        return MeasureConfigError(self.path, field_name, message, self.initiative_id)

    def data_path(self, key: str) -> Path | None:
        """``DATA.SOURCE.CONFIG.<key>`` resolved against the config file's directory."""
        value = self.source_config.get(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)


# --------------------------------------------------------------------------- reading


def read_config_file(path: Path, initiative: str | None = None) -> dict[str, Any]:
    """Parse a ``.json`` (JSON), ``.yaml``/``.yml`` (YAML) or other file (JSON, then YAML)."""
    if not path.exists():
        raise MeasureConfigError(path, None, f"Configuration file not found: {path}", initiative)
    if not path.is_file():
        raise MeasureConfigError(path, None, f"Path is not a file: {path}", initiative)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MeasureConfigError(path, None, f"cannot read file: {exc}", initiative) from exc
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            data = json.loads(text)
        elif suffix in (".yaml", ".yml"):
            data = safe_load_text(text)
        else:
            try:
                data = json.loads(text)
            except json.JSONDecodeError:
                data = safe_load_text(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise MeasureConfigError(
            path, None, f"Failed to parse configuration file: {exc}", initiative
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise MeasureConfigError(
            path,
            None,
            f"must be a mapping with DATA and MEASUREMENT, got {type(data).__name__}",
            initiative,
        )
    return data


# --------------------------------------------------------------------------- value checks


class _Checker:
    """Small typed checks that raise :class:`MeasureConfigError` naming the field."""

    def __init__(self, path: Path | None, initiative: str | None):
        self.path = path
        self.initiative = initiative

    def fail(self, field_name: str | None, message: str) -> MeasureConfigError:
        return MeasureConfigError(self.path, field_name, message, self.initiative)

    def mapping(self, name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(name, f"must be a mapping, got {type(value).__name__} {value!r}")
        return dict(value)

    def keys(self, name: str, value: Mapping[str, Any], valid: tuple[str, ...]) -> None:
        for key in value:
            if key not in valid:
                close = difflib.get_close_matches(str(key), valid, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                prefix = f"{name}." if name else ""
                raise self.fail(
                    f"{prefix}{key}", f"unknown key.{hint} Valid keys: {', '.join(valid)}"
                )

    def required(self, name: str, value: Any) -> Any:
        if value is None:
            raise self.fail(name, "Missing required field")
        return value

    def string(self, name: str, value: Any, *, optional: bool = False) -> str | None:
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, got {value!r}")
        return value

    def integer(self, name: str, value: Any, *, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"must be an integer, got {type(value).__name__} {value!r}")
        if isinstance(value, float):
            if not value.is_integer():
                raise self.fail(name, f"must be an integer, got {value!r}")
            value = int(value)
        if minimum is not None and value < minimum:
            raise self.fail(name, f"must be >= {minimum}, got {value!r}")
        return int(value)

    def number(
        self,
        name: str,
        value: Any,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(name, f"must be a number, got {type(value).__name__} {value!r}")
        value = float(value)
        if not math.isfinite(value):
            raise self.fail(name, f"must be a finite number, got {value!r}")
        if low is not None and (value <= low if low_open else value < low):
            raise self.fail(name, f"must be {'>' if low_open else '>='} {low}, got {value!r}")
        if high is not None and value > high:
            raise self.fail(name, f"must be <= {high}, got {value!r}")
        return value

    def date(self, name: str, value: Any, *, optional: bool = False) -> pd.Timestamp | None:
        if value is None:
            if optional:
                return None
            raise self.fail(name, "Missing required field")
        if isinstance(value, dt.datetime | dt.date | pd.Timestamp):
            return pd.Timestamp(value).normalize()
        if isinstance(value, str) and _ISO_DATE.fullmatch(value.strip()):
            try:
                stamp = pd.Timestamp(value.strip())
            except (ValueError, TypeError):
                stamp = None
            if stamp is not None and not pd.isna(stamp) and stamp.tzinfo is None:
                return stamp.normalize()
        raise self.fail(
            name, f"Invalid date format: {value!r}. Expected YYYY-MM-DD (quoted or a YAML date)"
        )


def _plain_dates(value: Any) -> Any:
    """Turn YAML date/datetime objects into ISO strings, recursively (spec bug B8)."""
    if isinstance(value, Mapping):
        return {k: _plain_dates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_dates(v) for v in value]
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# --------------------------------------------------------------------------- loading


def load_measure_config(
    source: Path | str | Mapping[str, Any],
    *,
    initiative_id: str | None = None,
    base_dir: Path | str | None = None,
    raw: Mapping[str, Any] | None = None,
) -> MeasureConfig:
    """Load ``source`` (a file path, or a config dict) and validate it.

    ``base_dir`` (for a dict) is where relative data paths are resolved; for a file it is the
    file's directory. ``raw`` lets a caller that already parsed the file skip re-reading it.
    """
    from impact_assets.measure.transforms import validate_transform

    if isinstance(source, Mapping):
        path = None
        data = dict(source)
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        path = Path(source).expanduser().resolve()
        data = dict(raw) if raw is not None else read_config_file(path, initiative_id)
        base = Path(base_dir) if base_dir is not None else path.parent
    check = _Checker(path, initiative_id)

    data = _plain_dates(data)
    check.keys("", data, _TOP_KEYS)
    missing = [s for s in ("DATA", "MEASUREMENT") if s not in data or data[s] is None]
    if missing:
        raise check.fail(missing[0], f"Missing required section: {missing[0]}")
    user_data = check.mapping("DATA", data["DATA"])
    check.keys("DATA", user_data, _DATA_KEYS)
    if "SOURCE" not in user_data or user_data["SOURCE"] is None:
        raise check.fail("DATA.SOURCE", "Missing required field: DATA.SOURCE")
    user_measurement = check.mapping("MEASUREMENT", data["MEASUREMENT"])
    check.keys("MEASUREMENT", user_measurement, _MEASUREMENT_KEYS)
    if user_measurement.get("MODEL") is None:
        raise check.fail("MEASUREMENT.MODEL", "Missing required field: MEASUREMENT.MODEL")
    for name, section in (
        ("DATA.SOURCE", user_data["SOURCE"]),
        ("DATA.TRANSFORM", user_data.get("TRANSFORM", {})),
        ("MEASUREMENT.PARAMS", user_measurement.get("PARAMS", {})),
        ("CATALOG_SIMULATOR", data.get("CATALOG_SIMULATOR", {})),
        ("OUTPUT", data.get("OUTPUT", {})),
    ):
        if section is not None:
            check.mapping(name, section)

    merged = deep_merge(MEASURE_DEFAULTS, data)
    merged_data = merged["DATA"]

    # ---- source
    source_section = check.mapping("DATA.SOURCE", merged_data["SOURCE"])
    check.keys("DATA.SOURCE", source_section, _SOURCE_KEYS)
    source_type = source_section.get("type")
    if source_type not in SOURCE_TYPES:
        raise check.fail(
            "DATA.SOURCE.type",
            f"Unknown source type {source_type!r}. Available: {list(SOURCE_TYPES)}",
        )
    source_config = check.mapping("DATA.SOURCE.CONFIG", source_section.get("CONFIG"))
    check.keys("DATA.SOURCE.CONFIG", source_config, _SOURCE_CONFIG_KEYS)
    prefix = "DATA.SOURCE.CONFIG."
    seed = check.integer(
        prefix + "seed", check.required(prefix + "seed", source_config["seed"]), minimum=0
    )
    n_products = check.integer(prefix + "n_products", source_config["n_products"], minimum=1)
    if n_products < MIN_SAMPLE_SIZE:
        raise check.fail(
            prefix + "n_products",
            f"must be >= {MIN_SAMPLE_SIZE} (the smallest sample a MeasureResult accepts), "
            f"got {n_products}",
        )
    for key in ("product_id_column", "date_column"):
        check.string(prefix + key, source_config[key])
    check.string(prefix + "mode", source_config["mode"])
    for key in ("path", "scale_path", "storage_path"):
        check.string(prefix + key, source_config.get(key), optional=True)
    required_dates = source_type == "simulator"
    start = check.date(
        prefix + "start_date", source_config["start_date"], optional=not required_dates
    )
    end = check.date(prefix + "end_date", source_config["end_date"], optional=not required_dates)
    if start is not None and end is not None and start > end:
        raise check.fail(
            prefix + "start_date",
            f"start_date ({start.date()}) must be before or equal to end_date ({end.date()})",
        )
    if source_type == "file" and source_config.get("path") is None:
        raise check.fail(prefix + "path", "Missing required field: a file source needs 'path'")
    for key, stamp in (("start_date", start), ("end_date", end)):
        source_config[key] = None if stamp is None else stamp.date().isoformat()
    merged_data["SOURCE"] = {"type": source_type, "CONFIG": source_config}

    # ---- simulator funnel parameters (honoured, unlike upstream: spec B9)
    funnel = _funnel(check, check.mapping("CATALOG_SIMULATOR", merged["CATALOG_SIMULATOR"]))

    # ---- enrichment
    treatment = None
    enrichment = merged_data.get("ENRICHMENT")
    if enrichment is not None:
        enrichment = check.mapping("DATA.ENRICHMENT", enrichment)
        check.keys("DATA.ENRICHMENT", enrichment, _FUNCTION_KEYS)
        if source_type != "simulator":
            raise check.fail(
                "DATA.ENRICHMENT",
                f"enrichment is applied by the simulator; it cannot be used with a "
                f"{source_type!r} source",
            )
        function = enrichment.get("FUNCTION")
        if function not in ENRICHMENT_FUNCTIONS:
            raise check.fail(
                "DATA.ENRICHMENT.FUNCTION",
                f"Unknown enrichment function {function!r}. Available: {list(ENRICHMENT_FUNCTIONS)}",
            )
        params = check.mapping("DATA.ENRICHMENT.PARAMS", enrichment.get("PARAMS") or {})
        check.keys("DATA.ENRICHMENT.PARAMS", params, tuple(ENRICHMENT_DEFAULTS))
        params = {**ENRICHMENT_DEFAULTS, **params}
        treatment = _treatment(check, function, params, funnel)
        params["enrichment_start"] = treatment.enrichment_start.date().isoformat()
        merged_data["ENRICHMENT"] = {"FUNCTION": function, "PARAMS": params}

    # ---- transform
    transform = check.mapping("DATA.TRANSFORM", merged_data["TRANSFORM"])
    check.keys("DATA.TRANSFORM", transform, _FUNCTION_KEYS)
    transform_name = transform.get("FUNCTION")
    if transform_name is None:
        raise check.fail("DATA.TRANSFORM.FUNCTION", "Transform config must include 'FUNCTION' key")
    transform_params = check.mapping("DATA.TRANSFORM.PARAMS", transform.get("PARAMS") or {})
    if treatment is not None:  # upstream: enrichment_start is copied into the transform params
        transform_params["enrichment_start"] = treatment.enrichment_start.date().isoformat()
    transform_params = validate_transform(transform_name, transform_params, check)
    merged_data["TRANSFORM"] = {"FUNCTION": transform_name, "PARAMS": transform_params}

    # ---- measurement
    model_name = check.string("MEASUREMENT.MODEL", merged["MEASUREMENT"]["MODEL"])
    model_params = check.mapping("MEASUREMENT.PARAMS", merged["MEASUREMENT"]["PARAMS"])
    min_sample_size = merged["MEASUREMENT"].get("min_sample_size")
    if min_sample_size is not None:
        min_sample_size = check.integer("MEASUREMENT.min_sample_size", min_sample_size, minimum=1)
    user_params = user_measurement.get("PARAMS") or {}

    return MeasureConfig(
        path=path,
        base_dir=base,
        initiative_id=initiative_id,
        resolved=merged,
        source_type=source_type,
        source_config=source_config,
        start_date=start,
        end_date=end,
        seed=seed,
        n_products=n_products,
        funnel=funnel,
        treatment=treatment,
        transform_name=transform_name,
        transform_params={k: v for k, v in transform_params.items()},
        model_name=model_name,
        model_params=model_params,
        min_sample_size=min_sample_size,
        user_param_keys=tuple(sorted(str(k) for k in user_params)),
    )


def _funnel(check: _Checker, section: dict[str, Any]) -> FunnelParams:
    valid = tuple(MEASURE_DEFAULTS["CATALOG_SIMULATOR"])
    check.keys("CATALOG_SIMULATOR", section, valid)
    p = "CATALOG_SIMULATOR."
    unit = {"low": 0.0, "high": 1.0}
    values = {
        "sale_prob": check.number(p + "sale_prob", section["sale_prob"], **unit),
        "impression_to_visit_rate": check.number(
            p + "impression_to_visit_rate", section["impression_to_visit_rate"], **unit
        ),
        "visit_to_cart_rate": check.number(
            p + "visit_to_cart_rate", section["visit_to_cart_rate"], low=0.0, high=1.0
        ),
        "cart_to_order_rate": check.number(
            p + "cart_to_order_rate", section["cart_to_order_rate"], **unit
        ),
        "default_quality_score": check.number(
            p + "default_quality_score", section["default_quality_score"], **unit
        ),
        "mean_impressions": check.number(
            p + "mean_impressions", section["mean_impressions"], low=0.0, low_open=True
        ),
        "traffic_sigma": check.number(
            p + "traffic_sigma", section["traffic_sigma"], low=0.0, high=5.0
        ),
        "price_elasticity": check.number(
            p + "price_elasticity", section["price_elasticity"], low=-5.0, high=5.0
        ),
        "reference_price": check.number(
            p + "reference_price", section["reference_price"], low=0.0, low_open=True
        ),
        "weekly_amplitude": check.number(
            p + "weekly_amplitude", section["weekly_amplitude"], low=0.0, high=0.99
        ),
        "daily_trend": check.number(p + "daily_trend", section["daily_trend"], low=-1.0, high=1.0),
        "multi_unit_rate": check.number(p + "multi_unit_rate", section["multi_unit_rate"], **unit),
    }
    if values["visit_to_cart_rate"] >= 1.0:
        raise check.fail(p + "visit_to_cart_rate", "must be < 1 (treatment adds carts to visits)")
    return FunnelParams(**values)


def _treatment(
    check: _Checker, function: str, params: dict[str, Any], funnel: FunnelParams
) -> Treatment:
    p = "DATA.ENRICHMENT.PARAMS."
    start = check.date(p + "enrichment_start", params["enrichment_start"])
    if start is None:  # pragma: no cover - check.date raises for None
        raise check.fail(p + "enrichment_start", "Missing required field")
    fraction = check.number(
        p + "enrichment_fraction", params["enrichment_fraction"], low=0.0, high=1.0
    )
    effect = check.number(p + "effect_size", params["effect_size"], low=-1.0, low_open=True)
    max_effect = 1.0 / funnel.visit_to_cart_rate - 1.0
    if effect > max_effect + 1e-12:
        raise check.fail(
            p + "effect_size",
            f"must be <= {max_effect:.4g}: the treatment multiplies the visit-to-cart rate "
            f"({funnel.visit_to_cart_rate}) by 1 + effect_size, which must stay a probability",
        )
    ramp_days = check.integer(p + "ramp_days", params["ramp_days"], minimum=0)
    quality_boost = check.number(p + "quality_boost", params["quality_boost"], low=-1.0, high=1.0)
    seed = check.integer(p + "seed", check.required(p + "seed", params["seed"]), minimum=0)
    backend = params.get("backend")
    if backend not in ("mock", None):
        raise check.fail(
            p + "backend", f"only the 'mock' backend exists here (no LLM backends), got {backend!r}"
        )
    check.string(p + "prompt_path", params.get("prompt_path"), optional=True)
    return Treatment(
        function=function,
        enrichment_fraction=fraction,
        enrichment_start=start,
        effect_size=effect,
        ramp_days=ramp_days,
        quality_boost=quality_boost,
        seed=seed,
        boosts_quality=ENRICHMENT_FUNCTIONS[function],
    )


# --------------------------------------------------------------------------- models


def resolve_model(cfg: MeasureConfig):
    """Look up ``MEASUREMENT.MODEL`` and validate ``MEASUREMENT.PARAMS`` with the model.

    Returns ``(model, params)``. Model errors are re-raised as :class:`MeasureConfigError`
    naming the file, the initiative and the field.
    """
    from impact_assets.measure.models.base import ModelError, get_model

    try:
        model = get_model(cfg.model_name)
    except ModelError as exc:
        raise cfg.error("MEASUREMENT.MODEL", str(exc)) from exc
    accepted = model.accepted_params
    if accepted is not None:
        unknown = [k for k in cfg.user_param_keys if k not in accepted]
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, sorted(accepted), n=1)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise cfg.error(
                f"MEASUREMENT.PARAMS.{unknown[0]}",
                f"model {cfg.model_name!r} does not use parameter(s) {', '.join(hints)}; "
                f"it reads {sorted(accepted)}",
            )
    try:
        params = model.validate_params(dict(cfg.model_params))
    except (ModelError, ValueError, TypeError) as exc:
        raise cfg.error("MEASUREMENT.PARAMS", f"model {cfg.model_name!r}: {exc}") from exc
    return model, params
