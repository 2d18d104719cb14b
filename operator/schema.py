"""Small builders for OpenAPI v3 (structural) schema nodes; used by the CRD modules crd_flowcollector and
crd_flowmetric, so the schemas read as a list of fields with their defaults and descriptions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flowlake.operator import defaults

Schema = dict[str, Any]

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8S_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"


def _common(node: Schema, desc: str, default: Any, rules: Iterable[Schema]) -> Schema:
    node["description"] = desc
    if default is not None:
        node["default"] = default
    rules = list(rules)
    if rules:
        node["x-kubernetes-validations"] = rules
    return node


def rule(expr: str, message: str) -> Schema:
    """A CEL validation rule (x-kubernetes-validations) with the message the API server returns."""
    return {"rule": expr, "message": message}


def obj(desc: str, props: Mapping[str, Schema], *, required: Iterable[str] = (), default: Any = None,
        rules: Iterable[Schema] = ()) -> Schema:
    node: Schema = {"type": "object", "properties": dict(props)}
    if required:
        node["required"] = list(required)
    return _common(node, desc, default, rules)


def section(desc: str, props: Mapping[str, Schema], *, rules: Iterable[Schema] = ()) -> Schema:
    """An optional object that defaults to all its fields' defaults, so leaving it out means the defaults.

    The default is spelled out in full (not `{}`): the API server checks a default against the CEL rules as
    written, before filling nested defaults into it."""
    node = obj(desc, props, rules=rules)
    node["default"] = defaults.apply(node, {})
    return node


def string(desc: str, *, default: str | None = None, enum: Iterable[str] | None = None, pattern: str | None = None,
           max_length: int | None = None, min_length: int | None = None, rules: Iterable[Schema] = ()) -> Schema:
    node: Schema = {"type": "string"}
    if enum is not None:
        node["enum"] = list(enum)
    if pattern is not None:
        node["pattern"] = pattern
    if max_length is not None:
        node["maxLength"] = max_length
    if min_length is not None:
        node["minLength"] = min_length
    return _common(node, desc, default, rules)


def duration(desc: str, default: str) -> Schema:
    return string(f"{desc} (a duration: 500ms, 15s, 5m, 1h)", default=default, pattern=DURATION_PATTERN,
                  max_length=32)


def integer(desc: str, *, default: int | None = None, minimum: int | None = None, maximum: int | None = None,
            rules: Iterable[Schema] = ()) -> Schema:
    node: Schema = {"type": "integer"}
    if minimum is not None:
        node["minimum"] = minimum
    if maximum is not None:
        node["maximum"] = maximum
    return _common(node, desc, default, rules)


def number(desc: str, *, default: float | None = None, minimum: float | None = None) -> Schema:
    node: Schema = {"type": "number"}
    if minimum is not None:
        node["minimum"] = minimum
    return _common(node, desc, default, ())


def boolean(desc: str, default: bool | None = None) -> Schema:
    return _common({"type": "boolean"}, desc, default, ())


def array(desc: str, items: Schema, *, default: list[Any] | None = None, max_items: int | None = None,
          list_type: str | None = None, rules: Iterable[Schema] = ()) -> Schema:
    node: Schema = {"type": "array", "items": items}
    if max_items is not None:
        node["maxItems"] = max_items
    if list_type is not None:
        node["x-kubernetes-list-type"] = list_type
    return _common(node, desc, default, rules)


def string_map(desc: str, *, default: dict[str, str] | None = None) -> Schema:
    return _common({"type": "object", "additionalProperties": {"type": "string"}}, desc, default, ())


def free_form(desc: str) -> Schema:
    """An object kept as given (no pruning): for values defined by another schema."""
    return _common({"type": "object", "x-kubernetes-preserve-unknown-fields": True}, desc, None, ())


_QUANTITY: Schema = {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True,
                     "pattern": r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                                r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"}


def resources(desc: str, default: dict[str, dict[str, str]]) -> Schema:
    """A container's ResourceRequirements (requests, limits of cpu and memory)."""
    quantities: Schema = {"type": "object", "additionalProperties": dict(_QUANTITY)}
    return obj(desc, {"requests": {**quantities, "description": "minimum resources (cpu, memory)"},
                      "limits": {**quantities, "description": "maximum resources (cpu, memory)"}},
               default=default)


def secret_ref(desc: str, key_default: str) -> Schema:
    """A key of a Secret in the FlowCollector namespace."""
    return obj(desc, {"name": string("Secret name", pattern=K8S_NAME_PATTERN, max_length=253),
                      "key": string("key inside the Secret", default=key_default, min_length=1, max_length=253)},
               required=["name"])
