"""Bearer-token authentication and tenant roles for the HTTP API and the Arrow Flight service.

`flowlake api --tokens FILE` loads a `TokenStore` (YAML; mount it from a Kubernetes Secret in a
cluster); `flowlake api --kube-auth` uses `KubeAuthenticator`, which asks the Kubernetes API server
(TokenReview, then SubjectAccessReview) and caches answers for a TTL. Without either, auth is off and
every caller is an admin (the embedded `flowlake up` default). Routes get a `Principal` through
`api.params.current_principal`; the Flight service calls `authenticate` itself.

Roles (as NetObserv's multi-tenancy): an admin sees every flow; a tenant sees the flows whose source or
destination namespace is one of its namespaces (`Principal.scope`, applied by engine.query.tenancy).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import yaml

from flowlake.engine.errors import ConfigError, FlowlakeError

Role = Literal["admin", "tenant"]


class AuthError(FlowlakeError):
    """The caller is not authenticated: HTTP 401 `{"error", "parameter": "Authorization"}`."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: `name`, `role` and, for a tenant, the namespaces it owns."""

    name: str
    role: Role
    namespaces: frozenset[str] = field(default_factory=frozenset)

    @property
    def scope(self) -> frozenset[str] | None:
        """What engine.query functions take as `scope`: None (everything) for an admin."""
        return None if self.role == "admin" else self.namespaces


ANONYMOUS_ADMIN = Principal("anonymous", "admin")  # auth off


class Authenticator(Protocol):
    def authenticate(self, token: str | None) -> Principal: ...


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


MISSING = "missing bearer token: send the header `Authorization: Bearer <token>`"


class TokenStore:
    """Static tokens -> principals, from a YAML file:

        tokens:
          - {name: alice, token: "s3cret-admin-token", role: admin}
          - {name: shop-team, token: "s3cret-shop-token", role: tenant, namespaces: [shop, payments]}
    """

    def __init__(self, principals: dict[str, Principal]) -> None:
        # Keyed by SHA-256: a lookup compares digests, never the secrets themselves (no timing oracle).
        self._by_digest = {_digest(t): p for t, p in principals.items()}

    @classmethod
    def from_file(cls, path: str | Path) -> TokenStore:
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise ConfigError(f"--tokens {p}: cannot read it ({exc.strerror}); give a readable YAML file") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"--tokens {p}: not valid YAML ({exc})") from exc
        return cls.from_mapping(data, str(p))

    @classmethod
    def from_mapping(cls, data: Any, origin: str = "tokens") -> TokenStore:
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ConfigError(f"{origin}: expected a mapping with a `tokens:` list of "
                              "{name, token, role, namespaces}")
        principals: dict[str, Principal] = {}
        for i, entry in enumerate(data["tokens"]):
            where = f"{origin}: tokens[{i}]"
            if not isinstance(entry, dict):
                raise ConfigError(f"{where}: expected a mapping {{name, token, role, namespaces}}")
            name, token, role = entry.get("name"), entry.get("token"), entry.get("role")
            namespaces = entry.get("namespaces", [])
            if not isinstance(name, str) or not name:
                raise ConfigError(f"{where}.name: give a non-empty string")
            if not isinstance(token, str) or len(token) < 8:
                raise ConfigError(f"{where}.token: give a string of at least 8 characters")
            if token in principals:
                raise ConfigError(f"{where}.token: the same token is given twice; tokens must be unique")
            if role not in ("admin", "tenant"):
                raise ConfigError(f"{where}.role: {role!r} is not admin or tenant")
            if not isinstance(namespaces, list) or not all(isinstance(n, str) and n for n in namespaces):
                raise ConfigError(f"{where}.namespaces: give a list of namespace names")
            if role == "tenant" and not namespaces:
                raise ConfigError(f"{where}.namespaces: a tenant needs at least one namespace")
            if role == "admin" and namespaces:
                raise ConfigError(f"{where}.namespaces: an admin sees every namespace; remove namespaces "
                                  "or make the role tenant")
            principals[token] = Principal(name, role, frozenset(namespaces))
        return cls(principals)

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError(MISSING)
        found = self._by_digest.get(_digest(token))
        if found is None:
            raise AuthError("invalid bearer token: it is not in the --tokens file")
        return found


# What a Kubernetes user needs, checked with SubjectAccessReview: `get` on this resource. Cluster-wide
# (a ClusterRoleBinding) makes an admin; in namespace N (a RoleBinding) makes N one of its namespaces.
KUBE_GROUP, KUBE_RESOURCE, KUBE_VERB = "flows.flowlake.io", "flows", "get"


class KubeAuthenticator:
    """Tokens checked by the Kubernetes API server; roles from RBAC. Answers are cached `ttl` seconds.

    1. TokenReview: is the bearer token valid, and for which user and groups?
    2. SubjectAccessReview: may that user `get flows.flowlake.io/flows` cluster-wide? Then admin.
    3. Else, for each namespace of the cluster (listed with the API's own credentials): may it there?
       Those namespaces make the tenant; none at all is a 401 (authenticated, but no flow is visible).
    The API's service account needs `create` on tokenreviews and subjectaccessreviews and `list` on
    namespaces (docs/api.md has the ClusterRole).
    """

    def __init__(self, client_config: Any, *, ttl: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 audiences: list[str] | None = None) -> None:
        from kubernetes import client

        self._api: Any = client.ApiClient(client_config)
        self._authn: Any = client.AuthenticationV1Api(self._api)
        self._authz: Any = client.AuthorizationV1Api(self._api)
        self._core: Any = client.CoreV1Api(self._api)
        self.ttl, self._clock, self._audiences = ttl, clock, audiences
        self._cache: dict[bytes, tuple[float, Principal | AuthError]] = {}
        self._lock = threading.Lock()
        self.reviews = 0  # TokenReviews sent (tests check the cache with it)

    def close(self) -> None:
        self._api.close()

    def authenticate(self, token: str | None) -> Principal:
        if not token:
            raise AuthError(MISSING)
        key = _digest(token)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            if isinstance(hit[1], AuthError):
                raise hit[1]
            return hit[1]
        try:
            answer: Principal | AuthError = self._review(token)
        except AuthError as exc:
            answer = exc
        with self._lock:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}  # drop expired entries
            self._cache[key] = (now + self.ttl, answer)
        if isinstance(answer, AuthError):
            raise answer
        return answer

    def _review(self, token: str) -> Principal:
        from kubernetes.client.exceptions import ApiException

        self.reviews += 1
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = self._audiences
        try:
            review = self._authn.create_token_review({"apiVersion": "authentication.k8s.io/v1",
                                                      "kind": "TokenReview", "spec": spec})
        except ApiException as exc:
            raise AuthError(f"the Kubernetes API server could not review the token (HTTP {exc.status}); "
                            "check the API's service account may create tokenreviews") from exc
        status = review.status
        if not status or not status.authenticated:
            raise AuthError("invalid bearer token: the Kubernetes API server did not authenticate it"
                            + (f" ({status.error})" if status and status.error else ""))
        user, groups = status.user.username, list(status.user.groups or [])
        if self._allowed(user, groups, None):
            return Principal(user, "admin")
        names = [n.metadata.name for n in self._core.list_namespace().items]
        # one review per namespace, a few at a time: hundreds of namespaces stay well under a second
        with ThreadPoolExecutor(max_workers=8) as pool:
            allowed = list(pool.map(lambda n: self._allowed(user, groups, n), names))
        mine = frozenset(n for n, ok in zip(names, allowed, strict=True) if ok)
        if not mine:
            raise AuthError(f"user {user!r} may not read flows in any namespace: bind a Role allowing "
                            f"`{KUBE_VERB}` on `{KUBE_RESOURCE}` in API group {KUBE_GROUP}")
        return Principal(user, "tenant", mine)

    def _allowed(self, user: str, groups: list[str], namespace: str | None) -> bool:
        attrs: dict[str, Any] = {"group": KUBE_GROUP, "resource": KUBE_RESOURCE, "verb": KUBE_VERB}
        if namespace is not None:
            attrs["namespace"] = namespace
        sar = self._authz.create_subject_access_review({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "resourceAttributes": attrs}})
        return bool(sar.status.allowed)
