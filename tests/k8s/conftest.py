"""tests/k8s: the API server machinery lives in apiserver.py and the session fixture `cluster` in tests/conftest.py
(shared with tests/operator); these names stay importable from here for the tests of this folder."""

from __future__ import annotations

from tests.k8s.apiserver import Cluster, admin_client, unavailable, wait_until

__all__ = ["Cluster", "admin_client", "unavailable", "wait_until"]
