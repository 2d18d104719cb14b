"""FlowMetric-shaped metric definitions and their validation; read by `config.MetricsConfig` and the metrics sink.

A definition has the keys of NetObserv's FlowMetric CRD spec (`flows.netobserv.io/v1alpha1`), so a
FlowMetric spec pastes into `metrics.definitions` unchanged. Validation happens here, without Polars,
so the config loader (and later the operator) can reject a bad definition before anything runs; every
error names the metric, the key and the fix.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, ModelWrapValidatorHandler, ValidationError, model_validator

from flowlake.engine import schema
from flowlake.engine.errors import ConfigError

KINDS = ("Counter", "Histogram", "Gauge")
DIRECTIONS = ("Any", "Egress", "Ingress")
MATCH_TYPES = ("Equal", "NotEqual", "Presence", "Absence", "MatchRegex", "NotMatchRegex")
# FlowDirection values each direction keeps: Inner (2, both ends on the reporting node) counts as both
# (OP internal/controller/flp: Ingress -> regex "0|2", Egress -> "1|2").
DIRECTION_VALUES: dict[str, tuple[int, ...]] = {"Ingress": (0, 2), "Egress": (1, 2)}
# Prometheus client default buckets, used by FLP when a histogram names none.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SUBFIELD = ">"  # `NetworkEvents>Type`: key Type of each item of a flattened list of maps

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
VARIABLE = re.compile(r"\$\(([^)]+)\)")


class MetricFilter(BaseModel):
    """One filter of a definition: `field` compared with `value` by `matchType`."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="flow field, or `List>Key` for an item of a flattened list")
    value: str = Field(default="", description="value for Equal/NotEqual (may hold `$(OtherField)`) or a regex")
    matchType: str = Field(default="Equal", description="Equal, NotEqual, Presence, Absence, MatchRegex, NotMatchRegex")


class FlowMetricSpec(BaseModel):
    """One metric, in the shape of the FlowMetric CRD spec (keys are camelCase as in the CRD)."""

    model_config = ConfigDict(extra="forbid")

    metricName: str = Field(description="name without the prefix (`metrics.prefix` is prepended)")
    type: str = Field(description="Counter, Histogram or Gauge")
    help: str = Field(default="", description="HELP text")
    valueField: str = Field(default="", description="numeric flow field to add up; empty counts flows")
    filters: list[MetricFilter] = Field(default_factory=list, description="all fields must match; "
                                        "filters on the same field match when any of them does")
    labels: list[str] = Field(default_factory=list, description="flow fields that become labels")
    flatten: list[str] = Field(default_factory=list, description="list fields giving one series per item")
    remap: dict[str, str] = Field(default_factory=dict, description="label field -> exposed label name")
    direction: str = Field(default="Any", description="Any, Ingress (FlowDirection 0|2) or Egress (1|2)")
    buckets: list[str | float] = Field(default_factory=list, description="histogram upper bounds")
    divider: str | float = Field(default="", description="the value is divided by this (e.g. 1000 for ms -> s)")
    charts: list[dict[str, Any]] = Field(default_factory=list, description="accepted from the CRD, unused")

    @model_validator(mode="wrap")
    @classmethod
    def _valid(cls, data: Any, handler: ModelWrapValidatorHandler[FlowMetricSpec]) -> FlowMetricSpec:
        """Every problem, structural or semantic, comes out as one message naming the metric."""
        name = data.get("metricName", "?") if isinstance(data, dict) else getattr(data, "metricName", "?")
        try:
            spec = handler(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"metric {name!r}: {problems}") from None
        check(spec)
        return spec

    @property
    def kind(self) -> str:
        """`counter`, `histogram` or `gauge`."""
        return canonical(self.type, KINDS).lower()

    @property
    def flow_direction(self) -> str:
        """`Any`, `Ingress` or `Egress`."""
        return canonical(self.direction, DIRECTIONS)

    def bucket_bounds(self) -> tuple[float, ...]:
        """Histogram upper bounds (the default set when none are given), without +Inf."""
        if not self.buckets:
            return DEFAULT_BUCKETS
        return tuple(float(b) for b in self.buckets if not math.isinf(float(b)))

    def divisor(self) -> float:
        return float(self.divider) if str(self.divider).strip() else 1.0

    def target(self, label: str) -> str:
        """The exposed name of label field `label`."""
        return self.remap.get(label) or label


def canonical(value: str, choices: tuple[str, ...]) -> str:
    """The choice `value` names, case-insensitively (the CRD says `Counter`, FLP `counter`)."""
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    return ""


def valid_metric_name(name: str) -> bool:
    return bool(_METRIC_NAME.match(name))


def flattened_root(spec: FlowMetricSpec, field: str) -> str | None:
    """The flatten entry `field` belongs to (`NetworkEvents` for `NetworkEvents>Type`), if any."""
    for flat in spec.flatten:
        if field == flat or field.startswith(flat + SUBFIELD):
            return flat
    return None


def _fail(spec: FlowMetricSpec, key: str, problem: str) -> ConfigError:
    return ConfigError(f"metric {spec.metricName!r}: {key}: {problem}")


def _numeric(t: pa.DataType) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t))


def _field_type(spec: FlowMetricSpec, key: str, field: str) -> pa.DataType | None:
    """Schema type of `field`, the item type when flattened, None for a `List>Key` sub-field."""
    root = flattened_root(spec, field)
    if SUBFIELD in field and root is None:
        raise _fail(spec, key, f"{field!r} reads inside a list; add {field.split(SUBFIELD)[0]!r} to flatten")
    base = root or field
    if base not in schema.BY_NAME:
        raise _fail(spec, key, f"{base!r} is not a flow field (see docs/flows-format.md for the names)")
    typ = schema.BY_NAME[base].type
    if root is None:
        return typ
    item = typ.value_type
    if field == root:
        return item
    if not (pa.types.is_map(item) or pa.types.is_struct(item)):
        raise _fail(spec, key, f"{field!r}: items of {root} are not maps; use {root!r} itself")
    return None


def _check_value_labels(spec: FlowMetricSpec) -> None:
    if spec.valueField:
        if spec.valueField not in schema.BY_NAME or not _numeric(schema.BY_NAME[spec.valueField].type):
            numeric = ", ".join(f.name for f in schema.FIELDS if _numeric(f.type) and f.group == "Counters")
            raise _fail(spec, "valueField", f"{spec.valueField!r} is not a numeric flow field; use one such as "
                        f"{numeric}, or leave it empty to count flows")
        if flattened_root(spec, spec.valueField):
            raise _fail(spec, "valueField", "cannot be a flattened field")
    for label in spec.labels:
        typ = _field_type(spec, "labels", label)
        if typ is not None and (pa.types.is_list(typ) or pa.types.is_map(typ) or pa.types.is_struct(typ)):
            hint = "add it to flatten" if flattened_root(spec, label) is None else f"use {label}>Key"
            raise _fail(spec, "labels", f"{label!r} holds {typ}, not one value per flow; {hint}")
        name = spec.target(label)
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise _fail(spec, "labels", f"{name!r} is not a valid Prometheus label name; "
                        f"remap it, e.g. remap: {{{label!r}: {re.sub(r'[^a-zA-Z0-9_]', '_', label).lower()!r}}}")
    targets = [spec.target(label) for label in spec.labels]
    if spec.kind == "histogram" and "le" in targets:
        raise _fail(spec, "labels", "'le' is the bucket label of a histogram; remap that label to another name")
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise _fail(spec, "remap", f"two labels are exposed as {dup}; give each its own name")
    stray = sorted(set(spec.remap) - set(spec.labels))
    if stray:
        raise _fail(spec, "remap", f"{stray} are not in labels; remap only renames labels")


def _check_filters(spec: FlowMetricSpec) -> None:
    for flt in spec.filters:
        match = canonical(flt.matchType, MATCH_TYPES)
        if not match:
            raise _fail(spec, f"filters[{flt.field}].matchType",
                        f"{flt.matchType!r} is not one of {', '.join(MATCH_TYPES)}")
        typ = _field_type(spec, f"filters[{flt.field}]", flt.field)
        if match in ("Presence", "Absence"):
            continue
        if typ is not None and (pa.types.is_list(typ) or pa.types.is_map(typ)):
            raise _fail(spec, f"filters[{flt.field}]", f"{match} on a list; add {flt.field!r} to flatten "
                        "to match items, or use Presence/Absence")
        if match in ("MatchRegex", "NotMatchRegex"):
            try:
                re.compile(flt.value)
            except re.error as exc:
                raise _fail(spec, f"filters[{flt.field}].value", f"bad regex {flt.value!r} ({exc})") from exc
            continue
        for var in VARIABLE.findall(flt.value):
            if var not in schema.BY_NAME:
                raise _fail(spec, f"filters[{flt.field}].value", f"$({var}) is not a flow field")
        if typ is not None and _numeric(typ) and not VARIABLE.search(flt.value):
            try:
                float(flt.value)
            except ValueError:
                raise _fail(spec, f"filters[{flt.field}].value", f"{flt.field} is numeric; {flt.value!r} is "
                            "not a number") from None


def _check_histogram(spec: FlowMetricSpec) -> None:
    if spec.kind != "histogram":
        if spec.buckets:
            raise _fail(spec, "buckets", "only a Histogram has buckets; remove them or set type: Histogram")
        return
    try:
        bounds = [float(b) for b in spec.buckets]
    except ValueError:
        raise _fail(spec, "buckets", f"{spec.buckets} must all be numbers, e.g. ['.005', '.01', '1']") from None
    if any(b >= a for a, b in zip(bounds[1:], bounds, strict=False)) or any(math.isnan(b) for b in bounds):
        raise _fail(spec, "buckets", f"{spec.buckets} must be strictly increasing numbers")


def check(spec: FlowMetricSpec) -> None:
    """Raise ConfigError naming the metric, the key and the fix when `spec` cannot work."""
    if not _METRIC_NAME.match(spec.metricName):
        raise _fail(spec, "metricName", "use letters, digits, _ and :, not starting with a digit")
    if not spec.kind:
        raise _fail(spec, "type", f"{spec.type!r} is not one of {', '.join(KINDS)}")
    if not spec.flow_direction:
        raise _fail(spec, "direction", f"{spec.direction!r} is not one of {', '.join(DIRECTIONS)}")
    if spec.kind == "counter" and not spec.metricName.endswith("_total"):
        raise _fail(spec, "metricName", f"Counter names end in _total (Prometheus convention, required by the "
                    f"exposition client); rename it {spec.metricName + '_total'!r}")
    for flat in spec.flatten:
        if flat not in schema.BY_NAME or not pa.types.is_list(schema.BY_NAME[flat].type):
            lists = ", ".join(f.name for f in schema.FIELDS if pa.types.is_list(f.type))
            raise _fail(spec, "flatten", f"{flat!r} is not a list field; flatten one of {lists}")
    _check_value_labels(spec)
    _check_filters(spec)
    _check_histogram(spec)
    try:
        divisor = spec.divisor()
    except ValueError:
        raise _fail(spec, "divider", f"{spec.divider!r} is not a number, e.g. '1000' for ms -> s") from None
    if divisor == 0 or not math.isfinite(divisor):
        raise _fail(spec, "divider", f"{spec.divider!r}: divide by a finite non-zero number, or leave it empty")
