"""Pure rendering of every Kubernetes object a FlowCollector asks for; used by the reconciler, the
`flowlake operator render` command and the tests.

    desired = render_all(collector, metric_definitions=[...], service_monitor=False)

The order is the apply order: namespace, identities, configuration, then workloads.
"""

from __future__ import annotations

from flowlake.operator.render import access, agent, api, processor
from flowlake.operator.render.common import MANAGED, MANAGER, Obj, spec_of
from flowlake.operator.render.config import processor_config

__all__ = ["MANAGED", "MANAGER", "Obj", "processor_config", "render_all", "spec_of"]


def render_all(collector: Obj, *, metric_definitions: list[Obj] | None = None,
               service_monitor: bool = False) -> list[Obj]:
    """Every object for `collector` (a FlowCollector dict with metadata.name and uid)."""
    spec = spec_of(collector)
    cfg = processor_config(spec, list(metric_definitions or []))
    out: list[Obj] = [access.namespace(collector, spec), *access.service_accounts(collector, spec),
                      *access.processor_rbac(collector, spec), processor.config_map(collector, spec, cfg),
                      processor.service(collector, spec), access.agent_metrics_service(collector, spec)]
    if spec["api"]["enable"]:
        out.append(api.service(collector, spec))
        if spec["api"]["auth"]["type"] == "Kubernetes":
            out += api.kube_auth_rbac(collector, spec)
    if spec["networkPolicy"]["enable"]:
        out.append(access.network_policy(collector, spec))
    if service_monitor:
        out += access.service_monitors(collector, spec)
    if spec["execution"]["mode"] == "OnHold":
        return out
    out += [agent.daemonset(collector, spec), processor.workload(collector, spec, cfg)]
    if spec["deploymentModel"] == "Kafka" and spec["processor"]["autoscaler"]["enable"]:
        out.append(processor.autoscaler(collector, spec))
    if spec["api"]["enable"]:
        out.append(api.deployment(collector, spec))
    return out
