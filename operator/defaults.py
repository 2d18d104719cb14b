"""Structural defaulting from a CRD schema, as the API server does it; used by the render functions so a
spec rendered offline (tests, `flowlake operator render`) gets the same defaults as one read from the cluster.

The rule is the API server's: a missing property with a `default` gets it (deep-copied), then defaulting
recurses into objects and array items that are present. Defaults are never applied to explicit nulls.
"""

from __future__ import annotations

import copy
from typing import Any


def apply(schema: dict[str, Any], value: Any) -> Any:
    """A copy of `value` with the defaults of `schema` filled in."""
    value = copy.deepcopy(value)
    _fill(schema, value)
    return value


def _fill(schema: dict[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        props: dict[str, Any] = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                _fill(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in set(value) - set(props):
                _fill(extra, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _fill(schema["items"], item)
