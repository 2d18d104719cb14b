"""FlowCollector status conditions from what the workloads report; pure functions called by the reconciler.

A component is ready when its controller has observed the latest generation and every desired pod is
ready and updated (DaemonSet: numberReady == updatedNumberScheduled == desiredNumberScheduled > 0;
Deployment: readyReplicas == updatedReplicas == spec.replicas). `Ready` is True when every component is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]
READY, IN_PROGRESS, FAILURE, ON_HOLD, UNUSED = "Ready", "InProgress", "Failure", "OnHold", "Unused"
VALID, WARNINGS = "Valid", "ValidWithWarnings"  # ConfigurationValid reasons that are True
OK_REASONS = (READY, UNUSED, VALID, WARNINGS)


@dataclass(frozen=True)
class State:
    reason: str
    message: str

    @property
    def ok(self) -> bool:
        return self.reason in OK_REASONS


def _generation(obj: Obj) -> State | None:
    gen = obj["metadata"].get("generation", 0)
    seen = obj.get("status", {}).get("observedGeneration", 0)
    if seen < gen:
        return State(IN_PROGRESS, f"the {obj['kind']} controller has not processed generation {gen} yet "
                                  f"(observed {seen})")
    return None


def daemonset(obj: Obj) -> State:
    pending = _generation(obj)
    if pending:
        return pending
    st = obj.get("status", {})
    desired, ready = st.get("desiredNumberScheduled", 0), st.get("numberReady", 0)
    updated = st.get("updatedNumberScheduled", 0)
    if desired == 0:
        return State(IN_PROGRESS, "no node runs it (desiredNumberScheduled 0): check nodeSelector and taints")
    if ready >= desired and updated >= desired:
        return State(READY, f"{ready}/{desired} pods ready")
    return State(IN_PROGRESS, f"{ready}/{desired} pods ready, {updated} updated")


def deployment(obj: Obj) -> State:
    for cond in obj.get("status", {}).get("conditions", []):
        if (cond.get("type") == "Progressing" and cond.get("status") == "False") or \
                (cond.get("type") == "ReplicaFailure" and cond.get("status") == "True"):
            return State(FAILURE, f"{cond.get('reason', '')}: {cond.get('message', '')}".strip(": "))
    pending = _generation(obj)
    if pending:
        return pending
    st = obj.get("status", {})
    want = obj["spec"].get("replicas", 1)
    ready, updated = st.get("readyReplicas", 0), st.get("updatedReplicas", 0)
    if ready >= want and updated >= want:
        return State(READY, f"{ready}/{want} replicas ready")
    return State(IN_PROGRESS, f"{ready}/{want} replicas ready, {updated} updated")


def workload(obj: Obj | None, what: str) -> State:
    if obj is None:
        return State(IN_PROGRESS, f"{what} not created yet")
    return daemonset(obj) if obj["kind"] == "DaemonSet" else deployment(obj)


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, ok: bool, reason: str, message: str, generation: int, previous: list[Obj]) -> Obj:
    status = "True" if ok else "False"
    old = next((c for c in previous if c.get("type") == ctype), None)
    # lastTransitionTime moves only when the status does (Kubernetes API conventions)
    since = old["lastTransitionTime"] if old and old.get("status") == status and old.get("lastTransitionTime") \
        else now()
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": since, "observedGeneration": generation}


def conditions(components: dict[str, State], config: State, generation: int, previous: list[Obj]) -> list[Obj]:
    """`Ready`, `ConfigurationValid` and `<Component>Ready` conditions."""
    out = [condition("ConfigurationValid", config.ok, config.reason, config.message, generation, previous)]
    for name, state in components.items():
        out.append(condition(f"{name}Ready", state.ok, state.reason, state.message, generation, previous))
    problems = [f"{n}: {s.message}" for n, s in components.items() if not s.ok]
    if not config.ok:
        ready = State(FAILURE, f"configuration: {config.message}")
    elif all(s.reason == ON_HOLD for s in components.values() if s.reason != UNUSED):
        ready = State(ON_HOLD, "execution.mode is OnHold: workloads removed, configuration kept")
    elif problems:
        reason = FAILURE if any(s.reason == FAILURE for s in components.values()) else IN_PROGRESS
        ready = State(reason, "; ".join(problems))
    else:
        ready = State(READY, f"{len(components)} components ready" if components else "ready")
    ok = ready.reason == READY
    return [condition("Ready", ok, ready.reason, ready.message, generation, previous), *out]
