"""List+watch loops, one thread per resource kind, feeding a KubeStore; started by KubeMetadata.

The loop is client-go's reflector in small: a paginated LIST gives every object and a resourceVersion,
then a WATCH from that version streams changes (with bookmarks, so the version stays fresh while idle).
A watch that the server ends after `timeoutSeconds` is re-opened from the last version. A 410 Gone
(the version was compacted away, or the API server restarted with a new watch cache) means events were
lost: LIST again, and the store marks what vanished as deleted. Connection failures retry with
exponential backoff and jitter, re-watching from the last version. Requests go through the official
client's ApiClient (its kubeconfig, TLS and token refresh), but objects stay JSON dicts: building the
client's model classes would cost more than everything else here. ReplicaSets and Jobs are read as
metadata only (PartialObjectMetadata): the old revisions every Deployment keeps then cost a name and an
owner each, not a pod template. (The API server offers no field selector on status.replicas to skip
them: "only metadata.name, metadata.namespace", as tested against kube-apiserver v1.37.)
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from flowlake.engine import selfmetrics
from flowlake.engine.metadata.kube_store import KubeStore

log = logging.getLogger(__name__)

BACKOFF_MIN = 0.5
CONNECT_TIMEOUT = 10.0
_META = "application/json;as=PartialObjectMetadata{};v=v1;g=meta.k8s.io,application/json"


@dataclass(frozen=True)
class Resource:
    kind: str  # the store's name for it
    path: str  # collection URL
    metadata_only: bool = False
    field_selector: str = ""


def resources(node_name: str = "") -> dict[str, Resource]:
    """What the processor watches; `node_name` restricts pods to that node (Direct mode)."""
    return {
        "pods": Resource("pods", "/api/v1/pods", field_selector=f"spec.nodeName={node_name}" if node_name else ""),
        "nodes": Resource("nodes", "/api/v1/nodes"),
        "services": Resource("services", "/api/v1/services"),
        "replicasets": Resource("replicasets", "/apis/apps/v1/replicasets", True),
        "jobs": Resource("jobs", "/apis/batch/v1/jobs", True),
    }


class WatchExpired(Exception):
    """410 Gone: the resourceVersion is no longer served; LIST again."""


class ApiError(Exception):
    """A non-200 answer of the API server, with what to do about it."""


def _hint(status: int, resource: Resource) -> str:
    if status == 401:
        return "the API server refused the credentials: check kubernetes.kubeconfig (or the service account token)"
    if status == 403:
        return (f"grant get, list and watch on {resource.kind} to the processor's service account "
                "(docs/kubernetes.md has the ClusterRole)")
    return "retrying with backoff"


class Watcher:
    """Keeps one resource kind of `store` in step with the API server, in a daemon thread."""

    def __init__(self, api: Any, resource: Resource, store: KubeStore, *, page_size: int = 500,
                 watch_timeout: float = 300.0, resync_seconds: float = 0.0, backoff_max: float = 10.0) -> None:
        self.api, self.resource, self.store = api, resource, store
        self.page_size, self.watch_timeout = page_size, watch_timeout
        self.resync_seconds, self.backoff_max = resync_seconds, backoff_max
        self.synced = threading.Event()  # set after the first complete LIST
        self.resource_version: str | None = None
        self._stop = threading.Event()
        self._resp: Any = None
        self._listed_at = 0.0
        self._thread: threading.Thread | None = None
        kind = resource.kind
        self._errors = selfmetrics.KUBE_WATCH_ERRORS.labels(kind=kind)
        self._events = {t: selfmetrics.KUBE_EVENTS.labels(kind=kind, type=t) for t in ("ADDED", "MODIFIED", "DELETED")}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"flowlake-watch-{self.resource.kind}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._close_stream()
        if self._thread is not None:
            self._thread.join(timeout)

    def _close_stream(self) -> None:
        resp = self._resp
        if resp is not None:
            try:
                resp.shutdown()  # unblocks a read in progress in the watch thread (urllib3 >= 2.3)
            except Exception:  # already closed or never connected: nothing to unblock
                log.debug("closing %s watch stream", self.resource.kind, exc_info=True)

    def _run(self) -> None:
        delay, reason = BACKOFF_MIN, "initial"
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._list(reason)
                opened = time.monotonic()
                self._watch()
                if time.monotonic() - opened < 1.0:  # closed at once (a server shutting down): do not spin
                    self._stop.wait(delay)
                    delay = min(delay * 2, self.backoff_max)
                else:
                    delay = BACKOFF_MIN
                if self.resync_seconds and time.monotonic() - self._listed_at >= self.resync_seconds:
                    self.resource_version, reason = None, "resync"
            except WatchExpired as exc:
                log.info("%s watch expired (%s); listing again", self.resource.kind, exc)
                self.resource_version, reason = None, "expired"
            except Exception as exc:  # refused, reset, timeout, HTTP error: the thread must go on
                if self._stop.is_set():
                    break
                self._errors.inc()
                pause = delay * (0.5 + random.random())
                log.warning("%s list/watch failed: %s (next try in %.1fs)", self.resource.kind, exc, pause)
                self._stop.wait(pause)
                delay = min(delay * 2, self.backoff_max)
                if self.resource_version is None:
                    reason = "error"

    def _request(self, params: list[tuple[str, str]], *, watch: bool, read_timeout: float) -> Any:
        res = self.resource
        if res.field_selector:
            params.append(("fieldSelector", res.field_selector))
        accept = _META.format("" if watch else "List") if res.metadata_only else "application/json"
        method, url, headers, _, _ = self.api.param_serialize(
            "GET", res.path, query_params=params, header_params={"Accept": accept}, auth_settings=["BearerToken"])
        resp = self.api.call_api(method, url, header_params=headers,
                                 _request_timeout=(CONNECT_TIMEOUT, read_timeout)).response
        if resp.status == 200:
            return resp
        try:
            body = resp.data.decode("utf-8", "replace")
            message = json.loads(body).get("message", body) if body.startswith("{") else body
        finally:
            resp.release_conn()
        if resp.status == 410:
            raise WatchExpired(message)
        raise ApiError(f"GET {res.path}: HTTP {resp.status} {message.strip()}; {_hint(resp.status, res)}")

    def _list(self, reason: str) -> None:
        self.store.replace(self.resource.kind, self._pages())
        selfmetrics.KUBE_RELISTS.labels(kind=self.resource.kind, reason=reason).inc()
        self._listed_at = time.monotonic()
        self.synced.set()

    def _pages(self) -> Iterator[dict[str, Any]]:
        """Every object, page by page (a page's JSON is dropped before the next is fetched)."""
        token, version = "", None
        while True:
            params = [("limit", str(self.page_size))] + ([("continue", token)] if token else [])
            resp = self._request(params, watch=False, read_timeout=60.0)
            try:
                page = json.loads(resp.data)
            finally:
                resp.release_conn()
            meta = page.get("metadata") or {}
            version = version or meta.get("resourceVersion")
            yield from page.get("items") or ()
            token = meta.get("continue") or ""
            if not token:
                break
        self.resource_version = version

    def _watch(self) -> None:
        timeout = int(self.watch_timeout * (1 + random.random()))  # spread reconnects, as client-go does
        if self.resync_seconds:
            timeout = max(1, min(timeout, int(self.resync_seconds - (time.monotonic() - self._listed_at)) + 1))
        params = [("watch", "true"), ("allowWatchBookmarks", "true"), ("timeoutSeconds", str(timeout)),
                  ("resourceVersion", self.resource_version or "")]
        self._resp = resp = self._request(params, watch=True, read_timeout=timeout + 30.0)
        try:
            if self._stop.is_set():
                return
            for line in _lines(resp):
                self._event(json.loads(line))
        except Exception:
            if self._stop.is_set():
                return  # our own shutdown() of the stream
            raise
        finally:
            self._resp = None
            resp.release_conn()

    def _event(self, event: dict[str, Any]) -> None:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise WatchExpired(obj.get("message", "410 Gone"))
            raise ApiError(f"watch {self.resource.path}: {obj.get('message', obj)}")
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if kind in self._events:
            self.store.apply(self.resource.kind, kind, obj)
            self._events[kind].inc()
        if version:
            self.resource_version = version  # BOOKMARK events only carry this


def _lines(resp: Any) -> Iterator[bytes]:
    """The newline-delimited JSON events of a watch response, as they arrive."""
    buffer = b""
    for chunk in resp.stream(amt=None, decode_content=False):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        yield from (line for line in lines if line)
