"""Fixtures for the end-to-end operator tests: the CRDs installed on the session's real kube-apiserver
(tests/conftest.py `cluster`), and `flowlake operator run` as a subprocess under the operator's own
ServiceAccount with exactly the ClusterRole of deploy/operator.yaml (so the tests prove that role is enough).
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowlake.operator import crds, manifests
from flowlake.operator.kube import Kube
from tests import procs
from tests.k8s.apiserver import Cluster, admin_client, free_port, wait_until

INTERVAL = 1.0  # the operator's drift check in these tests (seconds)


@pytest.fixture(scope="module")
def kube(cluster: Cluster) -> Iterator[Kube]:
    api = admin_client(cluster)
    yield Kube(api, "flowlake-tests")
    api.close()


def install_crds(kube: Kube) -> None:
    for crd in crds.all_crds():
        kube.apply(crd)

    def established() -> bool:
        for crd in crds.all_crds():
            live = kube.get("CustomResourceDefinition", crd["metadata"]["name"]) or {}
            conds = {c["type"]: c["status"] for c in live.get("status", {}).get("conditions", [])}
            if conds.get("Established") != "True":
                return False
        return True

    wait_until(established, 30, "the FlowCollector and FlowMetric CRDs to be established")


@pytest.fixture(scope="module")
def crds_installed(kube: Kube) -> Kube:
    install_crds(kube)
    return kube


def _operator_kubeconfig(cluster: Cluster, kube: Kube) -> Path:
    """The operator's namespace, ServiceAccount and RBAC from deploy/, and a kubeconfig with a token for it."""
    for obj in manifests.operator_objects("unused"):
        if obj["kind"] != "Deployment":  # no kubelet here: the operator runs as a local process instead
            kube.apply(obj)
    ns, name = manifests.NAMESPACE, manifests.NAME
    review = kube.request("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{name}/token", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 7200}})
    assert review is not None
    token = review["status"]["token"]
    path = cluster.root / "operator.kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: "{cluster.url}", certificate-authority: "{cluster.root / 'ca.crt'}"}}}}]
users: [{{name: operator, user: {{token: "{token}"}}}}]
contexts: [{{name: operator, context: {{cluster: test, user: operator}}}}]
current-context: operator
""")
    return path


@pytest.fixture(scope="module")
def operator(cluster: Cluster, crds_installed: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`flowlake operator run` against the API server; yields its log file."""
    kubeconfig = _operator_kubeconfig(cluster, crds_installed)
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    port = free_port()
    env = {**os.environ, "PYTHONSAFEPATH": "1"}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "flowlake.engine.cli", "operator", "run", "--kubeconfig", str(kubeconfig),
             "--interval", str(INTERVAL), "--liveness", f"http://127.0.0.1:{port}/healthz"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def alive() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"the operator exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return bool(resp.status == 200)

    try:
        wait_until(alive, 60, f"the operator's liveness endpoint (log: {log_path})", 0.25)
        yield log_path
    finally:
        procs.finish(proc, grace=15)


def log_tail(path: Path) -> str:
    return path.read_text()[-3000:]
