"""api.auth: the token file, and Kubernetes TokenReview + SubjectAccessReview against a real kube-apiserver.

The API server is the session `cluster` fixture (tests/conftest.py, tests/k8s/apiserver.py): its static
token users `admin` (system:masters), `flowlake-reader` and `nobody`. The test grants `get` on
flows.flowlake.io/flows to flowlake-reader in two namespaces with RoleBindings, so the reader is a tenant
of exactly those, and serves a lake through the HTTP API with that authenticator.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from flowlake.api import create_app
from flowlake.api.auth import AuthError, KubeAuthenticator, Principal, TokenStore
from flowlake.engine.errors import ConfigError
from flowlake.engine.metadata.kube import client_configuration
from flowlake.engine.sinks.lake import LakeSink
from tests.conftest import BASE_MS, make_batch
from tests.k8s import apiserver

GOOD = {"tokens": [{"name": "alice", "token": "alice-token-123", "role": "admin"},
                   {"name": "shop", "token": "shop-token-1234", "role": "tenant", "namespaces": ["shop", "pay"]}]}


def test_token_file_roles(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text("tokens:\n  - {name: alice, token: alice-token-123, role: admin}\n"
                    "  - {name: shop, token: shop-token-1234, role: tenant, namespaces: [shop, pay]}\n")
    store = TokenStore.from_file(path)
    assert store.authenticate("alice-token-123") == Principal("alice", "admin")
    shop = store.authenticate("shop-token-1234")
    assert shop.scope == frozenset({"shop", "pay"}) and store.authenticate("alice-token-123").scope is None
    for token in (None, "", "alice-token-12", "alice-token-1234"):
        with pytest.raises(AuthError):
            store.authenticate(token)


def _with(i: int, **changes: Any) -> dict[str, Any]:
    entries = [dict(e) for e in GOOD["tokens"]]
    entries[i].update(changes)
    return {"tokens": entries}


BAD_FILES = [
    ("not-a-mapping", ["x"], "tokens"),
    ("no-list", {"tokens": {"a": 1}}, "tokens"),
    ("entry-not-a-mapping", {"tokens": ["alice"]}, "tokens[0]"),
    ("no-name", _with(0, name=""), "tokens[0].name"),
    ("short-token", _with(0, token="short"), "tokens[0].token"),
    ("duplicate-token", _with(1, token="alice-token-123"), "tokens[1].token"),
    ("bad-role", _with(0, role="root"), "tokens[0].role"),
    ("tenant-without-namespaces", _with(1, namespaces=[]), "tokens[1].namespaces"),
    ("namespaces-not-a-list", _with(1, namespaces="shop"), "tokens[1].namespaces"),
    ("admin-with-namespaces", _with(0, namespaces=["shop"]), "tokens[0].namespaces"),
]


@pytest.mark.parametrize(("data", "where"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_token_files_name_the_entry(data: Any, where: str) -> None:
    with pytest.raises(ConfigError) as info:
        TokenStore.from_mapping(data, "tokens.yaml")
    assert f"tokens.yaml: {where}" in str(info.value) or str(info.value).startswith("tokens.yaml: expected")


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        TokenStore.from_file(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("tokens: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        TokenStore.from_file(tmp_path / "bad.yaml")


# -- Kubernetes -----------------------------------------------------------------------------------

NAMESPACES = ("fl-auth-a", "fl-auth-b", "fl-auth-c")
VIEWER = "flowlake-test-flows-viewer"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def kube(cluster: apiserver.Cluster) -> Iterator[dict[str, Any]]:
    from kubernetes import client

    api = apiserver.admin_client(cluster)
    core: Any = client.CoreV1Api(api)
    rbac: Any = client.RbacAuthorizationV1Api(api)
    for ns in NAMESPACES:
        core.create_namespace({"metadata": {"name": ns}})
    rbac.create_cluster_role({"metadata": {"name": VIEWER}, "rules": [
        {"apiGroups": ["flows.flowlake.io"], "resources": ["flows"], "verbs": ["get"]}]})
    for ns in NAMESPACES[:2]:
        rbac.create_namespaced_role_binding(ns, {
            "metadata": {"name": "reader-flows"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": VIEWER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "flowlake-reader"}]})
    clock = Clock()
    auth = KubeAuthenticator(client_configuration(str(cluster.kubeconfigs["admin"])), ttl=30, clock=clock)

    def reader_namespaces() -> frozenset[str]:
        clock.now += 31  # past the TTL: ask the API server again
        try:
            return auth.authenticate(apiserver.READER_TOKEN).namespaces & frozenset(NAMESPACES)
        except AuthError:
            return frozenset()

    # the RBAC authorizer learns bindings through its informer: wait until it has both
    apiserver.wait_until(lambda: reader_namespaces() == frozenset(NAMESPACES[:2]), 30, "the reader's RoleBindings")
    try:
        yield {"auth": auth, "clock": clock, "rbac": rbac}
    finally:
        for ns in NAMESPACES:
            core.delete_namespace(ns)
        rbac.delete_cluster_role(VIEWER)
        auth.close()
        api.close()


def test_kube_roles(kube: dict[str, Any]) -> None:
    auth: KubeAuthenticator = kube["auth"]
    admin = auth.authenticate(apiserver.ADMIN_TOKEN)
    assert admin.role == "admin" and admin.scope is None and admin.name == "admin"
    reader = auth.authenticate(apiserver.READER_TOKEN)
    assert reader == Principal("flowlake-reader", "tenant", frozenset(NAMESPACES[:2]))
    with pytest.raises(AuthError, match="may not read flows in any namespace"):
        auth.authenticate(apiserver.NOBODY_TOKEN)
    with pytest.raises(AuthError, match="did not authenticate"):
        auth.authenticate("not-a-kubernetes-token-at-all")
    with pytest.raises(AuthError, match="missing bearer token"):
        auth.authenticate(None)


def test_kube_answers_are_cached_for_the_ttl(kube: dict[str, Any]) -> None:
    auth: KubeAuthenticator = kube["auth"]
    clock: Clock = kube["clock"]
    clock.now += 100
    auth.authenticate(apiserver.READER_TOKEN)
    with pytest.raises(AuthError):
        auth.authenticate("unknown-token-cached-too")
    reviews = auth.reviews
    clock.now += 29
    for _ in range(5):
        auth.authenticate(apiserver.READER_TOKEN)
        with pytest.raises(AuthError):
            auth.authenticate("unknown-token-cached-too")
    assert auth.reviews == reviews  # within the TTL: no TokenReview at all
    clock.now += 2
    auth.authenticate(apiserver.READER_TOKEN)
    assert auth.reviews == reviews + 1


def test_kube_tenant_through_the_http_api(kube: dict[str, Any], tmp_path: Path) -> None:
    url = str(tmp_path / "lake")
    pairs = [("fl-auth-a", "fl-auth-c"), ("fl-auth-c", "fl-auth-b"), ("fl-auth-c", "fl-auth-c"), (None, "fl-auth-a")]
    n = 40
    src = [pairs[i % 4][0] for i in range(n)]
    dst = [pairs[i % 4][1] for i in range(n)]
    sink = LakeSink(url)
    sink.write(pl.from_arrow(make_batch(n, SrcK8S_Namespace=src, DstK8S_Namespace=dst)))  # type: ignore[arg-type]
    sink.close()
    params = {"startTime": BASE_MS // 1000, "endTime": BASE_MS // 1000 + n, "limit": 1000}
    with TestClient(create_app(url, authenticator=kube["auth"])) as c:
        def flows(token: str) -> list[tuple[str | None, str | None]]:
            r = c.get("/api/flows", params=params, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            return [(f.get("SrcK8S_Namespace"), f.get("DstK8S_Namespace")) for f in r.json()["flows"]]

        assert len(flows(apiserver.ADMIN_TOKEN)) == n
        mine = flows(apiserver.READER_TOKEN)
        assert len(mine) == 30 and ("fl-auth-c", "fl-auth-c") not in mine
        r = c.get("/api/flows", params=params, headers={"Authorization": f"Bearer {apiserver.NOBODY_TOKEN}"})
        assert r.status_code == 401 and r.json()["parameter"] == "Authorization"
        status = c.get("/api/status", headers={"Authorization": f"Bearer {apiserver.READER_TOKEN}"}).json()
        assert status["user"] == {"name": "flowlake-reader", "role": "tenant", "namespaces": list(NAMESPACES[:2])}


def test_kube_revoked_binding_ends_with_the_ttl(kube: dict[str, Any]) -> None:
    auth: KubeAuthenticator = kube["auth"]
    clock: Clock = kube["clock"]
    kube["rbac"].delete_namespaced_role_binding("reader-flows", NAMESPACES[1])

    def namespaces() -> frozenset[str]:
        clock.now += 31
        return auth.authenticate(apiserver.READER_TOKEN).namespaces

    apiserver.wait_until(lambda: namespaces() == frozenset(NAMESPACES[:1]), 30, "the revoked RoleBinding")
