"""FlowMetric resources -> the processor config's `metrics.definitions`, checked by the engine's own
validation; called by the reconciler, which writes each FlowMetric's status from the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from flowlake.engine.errors import ConfigError
from flowlake.engine.metrics import definitions, predefined

Obj = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    namespace: str
    name: str
    ok: bool
    message: str
    prometheus_name: str


def metric_name(fm: Obj) -> str:
    """spec.metricName, or the resource name with - turned into _ (NetObserv's rule)."""
    return str(fm.get("spec", {}).get("metricName") or fm["metadata"]["name"].replace("-", "_"))


def collect(flowmetrics: list[Obj], namespace: str, include: list[str], prefix: str) -> tuple[list[Obj], list[Verdict]]:
    """The definitions to serve (in name order) and one verdict per FlowMetric."""
    accepted: list[Obj] = []
    specs: list[definitions.FlowMetricSpec] = []
    verdicts = []
    for fm in sorted(flowmetrics, key=lambda o: (o["metadata"]["namespace"], o["metadata"]["name"])):
        ns, name = fm["metadata"]["namespace"], fm["metadata"]["name"]
        full = prefix + metric_name(fm)
        if ns != namespace:
            verdicts.append(Verdict(ns, name, False, f"ignored: a FlowMetric must be in the FlowCollector namespace "
                                    f"{namespace!r}; move it there", full))
            continue
        body = {**fm.get("spec", {}), "metricName": metric_name(fm)}
        try:
            spec = definitions.FlowMetricSpec.model_validate(body)
            predefined.select(include, [*specs, spec], prefix)  # clashes with the predefined or another one
        except (ValidationError, ConfigError, ValueError) as exc:
            message = str(exc.errors()[0]["msg"]) if isinstance(exc, ValidationError) else str(exc)
            verdicts.append(Verdict(ns, name, False, message.removeprefix("Value error, "), full))
            continue
        specs.append(spec)
        accepted.append(body)
        verdicts.append(Verdict(ns, name, True, f"served by the processor as {full}", full))
    return accepted, verdicts
