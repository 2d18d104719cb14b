"""The Kopf handlers: FlowCollector create/update/resume/delete and a periodic drift check, FlowMetric changes;
imported by `flowlake operator run` (operator/cli.py), which starts Kopf with them registered.

Each handler calls the Reconciler (reconcile.py); it is synchronous (the kubernetes client), so Kopf runs
it in its thread pool. A refused spec (wrong name, a config the processor would reject) is a permanent
error: Kopf posts it as a Warning event on the FlowCollector and does not retry; the status says it too.
"""

from __future__ import annotations

import logging
import os
from typing import Any, cast

import kopf

from flowlake.operator import crd_flowcollector as fc
from flowlake.operator.kube import Kube, KubeError, client_from_kubeconfig
from flowlake.operator.reconcile import Reconciler
from flowlake.operator.render import MANAGER
from flowlake.operator.render.common import COLLECTOR_LABEL

GROUP, VERSION = fc.GROUP, fc.VERSION
INTERVAL = float(os.environ.get("FLOWLAKE_OPERATOR_INTERVAL", "30"))  # drift check and status refresh, seconds
_state: dict[str, Reconciler] = {}


def reconciler() -> Reconciler:
    if "r" not in _state:
        _state["r"] = Reconciler(Kube(client_from_kubeconfig(os.environ.get("FLOWLAKE_KUBECONFIG", "")), MANAGER))
    return _state["r"]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    reconciler()  # fail at start, not at the first event, when the API is unreachable


def _run(body: kopf.Body, logger: kopf.Logger) -> None:
    try:
        out = reconciler().reconcile(dict(body))
    except KubeError as exc:
        raise kopf.TemporaryError(f"reconciliation failed, retrying: {exc}", delay=10) from exc
    if out.problem:
        kopf.warn(body, reason="SpecRefused", message=out.problem)  # a standard Warning event (kubectl describe)
        raise kopf.PermanentError(out.problem)
    if out.deleted:
        logger.info("removed %d objects no longer wanted: %s", len(out.deleted), ", ".join(out.deleted))
    logger.info("applied %d objects; %s", len(out.applied), out.conditions[0]["message"])


@kopf.on.create(GROUP, VERSION, fc.PLURAL)
@kopf.on.update(GROUP, VERSION, fc.PLURAL)
@kopf.on.resume(GROUP, VERSION, fc.PLURAL)
def apply_collector(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    _run(body, logger)


@kopf.timer(GROUP, VERSION, fc.PLURAL, interval=INTERVAL, initial_delay=INTERVAL)
def drift_check(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Re-apply (undoing edits and deletions of our objects) and refresh the status from the workloads."""
    try:
        reconciler().reconcile(dict(body))
    except KubeError as exc:
        logger.warning("drift check failed (next in %ss): %s", INTERVAL, exc)


@kopf.on.delete(GROUP, VERSION, fc.PLURAL)
def delete_collector(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """Delete explicitly: ownerReferences alone need a garbage collector, which a bare API server lacks."""
    try:
        gone = reconciler().delete_all(body["metadata"]["name"])
    except KubeError as exc:
        raise kopf.TemporaryError(f"cleanup failed, retrying: {exc}", delay=5) from exc
    logger.info("deleted %d objects", len(gone))


@kopf.on.event("apps", "v1", "daemonsets",
               labels={"app.kubernetes.io/managed-by": MANAGER, COLLECTOR_LABEL: kopf.PRESENT})
@kopf.on.event("apps", "v1", "deployments",
               labels={"app.kubernetes.io/managed-by": MANAGER, COLLECTOR_LABEL: kopf.PRESENT})
def workload_changed(body: kopf.Body, logger: kopf.Logger, **_: Any) -> None:
    """A workload's status moved (pods became ready, a rollout finished): refresh the FlowCollector's
    conditions now rather than at the next drift check."""
    try:
        reconciler().refresh_status(body["metadata"]["labels"][COLLECTOR_LABEL])
    except KubeError as exc:
        logger.warning("status refresh failed (the drift check retries): %s", exc)


@kopf.on.create(GROUP, VERSION, "flowmetrics")
@kopf.on.update(GROUP, VERSION, "flowmetrics")
@kopf.on.delete(GROUP, VERSION, "flowmetrics", optional=True)
def flowmetric_changed(logger: kopf.Logger, **_: Any) -> None:
    """A FlowMetric changes the processor config: reconcile the FlowCollector at once."""
    r = reconciler()
    collector = r.kube.get("FlowCollector", fc.SINGLETON)
    if collector is None:
        logger.info("no FlowCollector %r yet: the metric is used once it exists", fc.SINGLETON)
        return
    _run(kopf.Body(cast(Any, collector)), logger)
