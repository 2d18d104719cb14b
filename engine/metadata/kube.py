"""KubeMetadata: the MetadataSource fed by Kubernetes API watches; built by the Processor when
`kubernetes.enabled` (docs/kubernetes.md).

Five watch threads (kube_watch) keep a KubeStore of pods, nodes, services, replicasets and jobs; a
rebuild thread turns it into the IP table (kube_table) at most every `table_interval_seconds`, and only
when something changed or a tombstone expired. `table()` hands out the last table without waiting, so
the enrich stage never blocks on the API server: while it is unreachable, the last table stays in use.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from flowlake.engine import selfmetrics
from flowlake.engine.config import KubernetesConfig
from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata import kube_table
from flowlake.engine.metadata.base import TABLE_SCHEMA
from flowlake.engine.metadata.kube_store import KubeStore
from flowlake.engine.metadata.kube_watch import Watcher, resources

log = logging.getLogger(__name__)

DEFAULT_KUBECONFIG = Path("~/.kube/config")
# What the processor's service account needs (the operator renders it as a ClusterRole).
RBAC_RULES: tuple[dict[str, list[str]], ...] = (
    {"apiGroups": [""], "resources": ["pods", "services", "nodes"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
)


def client_configuration(kubeconfig: str = "") -> Any:
    """A `kubernetes.client.Configuration` from the kubeconfig, $KUBECONFIG, the in-cluster service
    account or ~/.kube/config, in that order; errors say which one failed and how to choose another."""
    try:
        from kubernetes import client
        kconfig: Any = importlib.import_module("kubernetes.config")  # untyped: Any spares a cast per call
    except ImportError as exc:
        raise ConfigError("kubernetes.enabled needs the Kubernetes client: pip install 'flowlake[k8s]'") from exc
    conf = client.Configuration()
    env = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path, origin = (kubeconfig, "kubernetes.kubeconfig") if kubeconfig else (env, "$KUBECONFIG")
    try:
        if path:
            if not Path(path).expanduser().is_file():
                raise ConfigError(f"{origin} is {path}, which is not a file; point {origin} at a kubeconfig, "
                                  "or leave both empty to use the in-cluster service account")
            kconfig.load_kube_config(config_file=str(Path(path).expanduser()), client_configuration=conf,
                                     persist_config=False)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            origin = "the in-cluster service account"
            kconfig.load_incluster_config(client_configuration=conf)
        elif DEFAULT_KUBECONFIG.expanduser().is_file():
            origin = str(DEFAULT_KUBECONFIG)
            kconfig.load_kube_config(config_file=str(DEFAULT_KUBECONFIG.expanduser()), client_configuration=conf,
                                     persist_config=False)
        else:
            raise ConfigError("kubernetes.enabled but no Kubernetes API to use: not in a pod "
                              "(KUBERNETES_SERVICE_HOST unset) and no ~/.kube/config; set kubernetes.kubeconfig "
                              "or $KUBECONFIG, or set kubernetes.enabled: false")
    except kconfig.ConfigException as exc:
        raise ConfigError(f"cannot use {origin} ({path or 'service account'}): {exc}; fix it or set "
                          "kubernetes.kubeconfig") from exc
    return conf


def node_name(value: str) -> str:
    """`kubernetes.node_name`, where `$VAR` reads an environment variable (a DaemonSet's downward API)."""
    if not value.startswith("$"):
        return value
    found = os.environ.get(value[1:], "")
    if not found:
        raise ConfigError(f"kubernetes.node_name is {value} but {value[1:]} is not set; set it from the pod's "
                          "spec.nodeName (downward API) or give the node name itself")
    return found


def empty_table() -> pl.DataFrame:
    return pl.DataFrame(schema=TABLE_SCHEMA)


class KubeMetadata:
    """Identity table kept current from the Kubernetes API; `start()` it, `close()` it."""

    def __init__(self, config: KubernetesConfig, cluster_name: str = "", *, client_config: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config, self.cluster_name = config, cluster_name
        self.client_config = client_config if client_config is not None else client_configuration(config.kubeconfig)
        self.store = KubeStore(config.deleted_grace_seconds, clock)
        from kubernetes import client  # imported by client_configuration already, or given a config by a test

        self.watchers = {
            kind: Watcher(client.ApiClient(self.client_config), res, self.store, page_size=config.page_size,
                          watch_timeout=config.watch_timeout_seconds, resync_seconds=config.resync_seconds)
            for kind, res in resources(node_name(config.node_name)).items()}
        self._table = empty_table()
        self._built = -1  # store version of _table
        self._build_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, wait: float | None = None) -> bool:
        """Start watching; wait up to `wait` (default sync_timeout_seconds) for every first list.
        Returns whether all kinds were listed; if not, enrichment starts partial and catches up."""
        for w in self.watchers.values():
            w.start()
        synced = self.wait_synced(self.config.sync_timeout_seconds if wait is None else wait)
        if not synced:
            missing = [k for k, w in self.watchers.items() if not w.synced.is_set()]
            log.warning("Kubernetes API: %s not listed yet after %.0fs; flows are enriched as they arrive "
                        "(see flowlake_kube_watch_errors_total and the log above)", ", ".join(missing),
                        self.config.sync_timeout_seconds if wait is None else wait)
        self.refresh()
        self._thread = threading.Thread(target=self._loop, name="flowlake-kube-table", daemon=True)
        self._thread.start()
        return synced

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(w.synced.wait(max(0.0, deadline - time.monotonic())) for w in self.watchers.values())

    def table(self) -> pl.DataFrame:
        return self._table

    def refresh(self) -> pl.DataFrame:
        """Drop expired tombstones and rebuild the table now if anything changed (the rebuild thread
        calls this every table_interval_seconds; tests call it to skip the wait)."""
        with self._build_lock:
            self.store.expire()
            version = self.store.version
            if version != self._built:
                started = time.perf_counter()
                table = kube_table.build(self.store.snapshot())
                selfmetrics.KUBE_TABLE_BUILD_SECONDS.observe(time.perf_counter() - started)
                self._table, self._built = table, version
                counts = dict(table.get_column("Type").value_counts().iter_rows())
                for kind in ("Pod", "Node", "Service"):
                    selfmetrics.KUBE_TABLE_ROWS.labels(type=kind).set(counts.get(kind, 0))
                for (kind, state), n in self.store.counts().items():
                    selfmetrics.KUBE_OBJECTS.labels(kind=kind, state=state).set(n)
            return self._table

    def _loop(self) -> None:
        while not self._stop.wait(self.config.table_interval_seconds):
            try:
                self.refresh()
            except Exception:  # the table must keep being rebuilt after any one failure
                log.exception("rebuilding the Kubernetes IP table failed; keeping the previous one")

    def close(self) -> None:
        self._stop.set()
        for w in self.watchers.values():
            w.stop()
        if self._thread is not None:
            self._thread.join()
        for w in self.watchers.values():
            w.api.close()
