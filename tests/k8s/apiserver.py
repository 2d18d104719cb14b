"""A real Kubernetes API server (etcd + kube-apiserver) on loopback for tests/k8s/ and tests/operator/.

The session fixture `cluster` (tests/conftest.py) runs `run_cluster`, so one API server serves both folders.

The binaries come from tests/k8s/build.sh (`make k8s-apiserver`). Without them the server tests skip,
unless FLOWLAKE_REQUIRE_K8S=1 (CI), where that is a failure. Session-scoped: one etcd and one API server
for all tests (about 10 s to start); processes are stopped by PID. There is no controller manager,
scheduler or kubelet: tests create Pods, ReplicaSets, Services and Nodes directly and set pod status
through the status subresource. Two identities: `admin` (system:masters) sets up objects, `reader` has
exactly kube.RBAC_RULES, so the tests also prove the documented ClusterRole is enough.
"""

from __future__ import annotations

import importlib
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.procs import free_port

K8S_VERSION = os.environ.get("K8S_VERSION", "v1.37.2")
BIN = Path(os.environ.get("FLOWLAKE_CACHE", "/var/cache/flowlake")) / "k8s" / K8S_VERSION / "bin"
REQUIRE_K8S = os.environ.get("FLOWLAKE_REQUIRE_K8S") == "1"
ADMIN_TOKEN, READER_TOKEN, NOBODY_TOKEN = "admin-token-0123456789", "reader-token-0123456789", "nobody-token-0123"
SERVICE_CIDR = "10.96.0.0/16"


def unavailable(reason: str) -> None:
    """Skip, or fail under FLOWLAKE_REQUIRE_K8S=1."""
    if REQUIRE_K8S:
        pytest.fail(f"{reason} (FLOWLAKE_REQUIRE_K8S=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the server is still starting, or a watch has not caught up
            last: object = exc
        else:
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_certs(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a service-account signing key, with the openssl CLI."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=flowlake-test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
             "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"))
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
             "-CAcreateserial", "-days", "2", "-extfile", str(d / "san.ext"), "-out", str(d / "server.crt"))
    _openssl("genrsa", "-out", str(d / "sa.key"), "2048")
    _openssl("rsa", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub"))


class Cluster:
    """etcd + kube-apiserver processes and the files to talk to them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.etcd_port, self.peer_port, self.port = free_port(), free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.etcd: subprocess.Popen[bytes] | None = None
        self.apiserver: subprocess.Popen[bytes] | None = None
        make_certs(root)
        (root / "tokens.csv").write_text(f'{ADMIN_TOKEN},admin,admin-uid,"system:masters"\n'
                                         f"{READER_TOKEN},flowlake-reader,reader-uid\n"
                                         f"{NOBODY_TOKEN},nobody,nobody-uid\n")
        self.kubeconfigs = {name: self._kubeconfig(name, token) for name, token in
                            (("admin", ADMIN_TOKEN), ("reader", READER_TOKEN), ("nobody", NOBODY_TOKEN))}

    def _kubeconfig(self, user: str, token: str) -> Path:
        path = self.root / f"{user}.kubeconfig"
        path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: test, cluster: {{server: "{self.url}", certificate-authority: "{self.root / 'ca.crt'}"}}}}]
users: [{{name: {user}, user: {{token: "{token}"}}}}]
contexts: [{{name: {user}, context: {{cluster: test, user: {user}}}}}]
current-context: {user}
""")
        return path

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.root / f"{name}.log", "ab")  # noqa: SIM115 - the child owns it; closed with Popen
        try:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()

    def start_etcd(self) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        client = f"http://127.0.0.1:{self.etcd_port}"
        self.etcd = self._spawn("etcd", [
            str(BIN / "etcd"), "--name", "t", "--data-dir", str(self.root / "etcd"), "--listen-client-urls", client,
            "--advertise-client-urls", client, "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}", "--unsafe-no-fsync", "--log-level", "warn"])
        def healthy() -> bool:
            with urllib.request.urlopen(f"{client}/health", timeout=2) as resp:
                return b'"health":"true"' in resp.read()

        wait_until(healthy, 30, f"etcd on {client} (log: {self.root / 'etcd.log'})")

    def start_apiserver(self) -> None:
        r = self.root
        self.apiserver = self._spawn("kube-apiserver", [
            str(BIN / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.port}",
            f"--cert-dir={r / 'certs'}", f"--tls-cert-file={r / 'server.crt'}",
            f"--tls-private-key-file={r / 'server.key'}", f"--token-auth-file={r / 'tokens.csv'}",
            "--authorization-mode=RBAC", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={r / 'sa.pub'}",
            f"--service-account-signing-key-file={r / 'sa.key'}",
            # No controller manager creates each namespace's `default` ServiceAccount; a loopback address
            # cannot be published as the `kubernetes` Service's endpoint.
            "--disable-admission-plugins=ServiceAccount", "--endpoint-reconciler-type=none",
            "--enable-priority-and-fairness=false", "-v=1"])
        ctx = ssl.create_default_context(cafile=str(r / "ca.crt"))

        def ready() -> bool:
            assert self.apiserver is not None
            if self.apiserver.poll() is not None:
                pytest.fail(f"kube-apiserver exited with {self.apiserver.returncode}; see {r / 'kube-apiserver.log'}")
            req = urllib.request.Request(f"{self.url}/readyz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            try:
                with urllib.request.urlopen(req, timeout=2, context=ctx) as resp:
                    return bool(resp.status == 200)
            except urllib.error.HTTPError as exc:  # 500 while post-start hooks run
                exc.close()  # it holds the connection: unclosed, it is a ResourceWarning later
                return False

        wait_until(ready, 120, f"kube-apiserver on {self.url} (log: {r / 'kube-apiserver.log'})", 0.25)

    def stop_apiserver(self) -> None:
        _stop(self.apiserver)
        self.apiserver = None

    def restart_apiserver(self) -> None:
        self.stop_apiserver()
        self.start_apiserver()

    def stop(self) -> None:
        self.stop_apiserver()
        _stop(self.etcd)
        self.etcd = None


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        # kube-apiserver's graceful shutdown waits for open watches (ours) until killed: do not wait long.
        proc.wait(3)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """etcd + kube-apiserver on loopback, RBAC for the reader identity set up (the `cluster` fixture's body)."""
    missing = [b for b in ("etcd", "kube-apiserver") if not (BIN / b).is_file()]
    if missing:
        unavailable(f"{', '.join(missing)} not built in {BIN}: run tests/k8s/build.sh (make k8s-apiserver)")
    if shutil.which("openssl") is None:
        unavailable("openssl CLI not found: apt-get install openssl")
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        unavailable("the kubernetes client is not installed: pip install 'flowlake[k8s]'")
    c = Cluster(tmp_path_factory.mktemp("k8s"))
    try:
        c.start_etcd()
        c.start_apiserver()
        _grant_reader(c)
        yield c
    finally:
        c.stop()


def _grant_reader(c: Cluster) -> None:
    from kubernetes import client

    from flowlake.engine.metadata.kube import RBAC_RULES

    admin = admin_client(c)
    rbac: Any = client.RbacAuthorizationV1Api(admin)  # Any: it takes dicts, its annotations say models
    rbac.create_cluster_role({"metadata": {"name": "flowlake-reader"}, "rules": [dict(r) for r in RBAC_RULES]})
    rbac.create_cluster_role_binding({
        "metadata": {"name": "flowlake-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flowlake-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "flowlake-reader"}]})
    reader = client.CoreV1Api(_client(c.kubeconfigs["reader"]))
    # The RBAC authorizer learns the binding through its own informer: wait rather than race it.
    wait_until(lambda: reader.list_pod_for_all_namespaces(limit=1) is not None, 30, "the reader's RBAC grant")
    reader.api_client.close()
    admin.close()


def admin_client(c: Cluster) -> Any:
    return _client(c.kubeconfigs["admin"])


def _client(kubeconfig: Path) -> Any:
    config: Any = importlib.import_module("kubernetes.config")  # untyped
    return config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)
