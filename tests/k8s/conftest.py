"""tests/k8s: the API server machinery lives in apiserver.py and the session fixture `cluster` in tests/conftest.py
(shared with tests/operator); these names stay importable from here (tests/k8s, benchmarks/kube_apiserver.py)."""

from __future__ import annotations

from tests.k8s.apiserver import BIN, Cluster, _grant_reader, admin_client, unavailable, wait_until

__all__ = ["BIN", "Cluster", "_grant_reader", "admin_client", "unavailable", "wait_until"]
