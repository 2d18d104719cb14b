"""Compact records of the Kubernetes objects enrichment needs, parsed from API JSON; called by kube_watch.

One parser per watched resource turns an object (a JSON dict, as the list and watch responses carry it)
into `(key, record)`, keeping only the fields the identity table uses, so holding 20k pods costs a few
MB. A `None` record means "holds no address any more" (a pod in phase Succeeded or Failed: its IP is
free for reuse), which the store treats as a deletion. Rules follow flowlogs-pipeline's informers
(reference/netobserv.md §3.1, add_kubernetes): a pod's addresses exclude its node's (host network),
its owner is its controller reference; a node lists all its IP addresses, InternalIP first.
"""

from __future__ import annotations

import functools
import ipaddress
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

ZONE_LABEL = "topology.kubernetes.io/zone"
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})

Obj = dict[str, Any]


class Pod(NamedTuple):
    namespace: str
    name: str
    node: str  # spec.nodeName; "" before scheduling
    host_ip: str  # status.hostIP
    ips: tuple[str, ...]  # status.podIPs that are the pod's own
    host_ips: tuple[str, ...]  # status.podIPs of a host-network pod: they identify its node
    owner_kind: str  # controller ownerReference ("" when none)
    owner_name: str


class Node(NamedTuple):
    name: str
    ips: tuple[str, ...]  # InternalIP addresses first, then the other IP addresses
    zone: str


class Service(NamedTuple):
    namespace: str
    name: str
    ips: tuple[str, ...]  # spec.clusterIPs without "None"


class Owner(NamedTuple):
    """The controller of a ReplicaSet (a Deployment) or of a Job (a CronJob)."""

    namespace: str
    kind: str  # of the owned object: ReplicaSet or Job
    name: str
    owner_kind: str
    owner_name: str


Record = Pod | Node | Service | Owner
Parser = Callable[[Obj], tuple[str, Record | None]]


def _s(value: object) -> str:
    """A string field, interned: namespaces, node names and kinds repeat across thousands of objects."""
    return sys.intern(value) if isinstance(value, str) else ""


def _ip(value: object) -> str:
    """Canonical text of an address (IPv6 compressed, as the agent writes it); "" when not an IP."""
    return _canonical_ip(value) if isinstance(value, str) and value else ""


@functools.lru_cache(maxsize=1 << 16)  # relists parse every address again; most are unchanged
def _canonical_ip(value: str) -> str:
    try:
        return sys.intern(ipaddress.ip_address(value).compressed)
    except ValueError:
        return ""  # a node's Hostname address, or garbage


def _controller(meta: Obj) -> tuple[str, str]:
    """(kind, name) of the controller owner reference, else the first one, else ("", "")."""
    refs = [r for r in meta.get("ownerReferences") or () if isinstance(r, dict)]
    if not refs:
        return "", ""
    ref = next((r for r in refs if r.get("controller")), refs[0])
    return _s(ref.get("kind")), str(ref.get("name") or "")


def _key(meta: Obj) -> str:
    return str(meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}")


def pod(obj: Obj) -> tuple[str, Pod | None]:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    key = _key(meta)
    if status.get("phase") in TERMINAL_PHASES:
        return key, None
    host_ip = _ip(status.get("hostIP"))
    addrs = [_ip(p.get("ip")) for p in status.get("podIPs") or () if isinstance(p, dict)]
    if not addrs and status.get("podIP"):
        addrs = [_ip(status["podIP"])]
    addrs = [a for a in addrs if a]
    host_network = bool(spec.get("hostNetwork"))
    own = tuple(a for a in addrs if not host_network and a != host_ip)
    host = tuple(a for a in addrs if host_network or a == host_ip)
    kind, name = _controller(meta)
    return key, Pod(_s(meta.get("namespace")), str(meta.get("name") or ""), _s(spec.get("nodeName")),
                    host_ip, own, host, kind, name)


def node(obj: Obj) -> tuple[str, Node | None]:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    addresses = [a for a in status.get("addresses") or () if isinstance(a, dict)]
    ordered = sorted(addresses, key=lambda a: a.get("type") != "InternalIP")  # stable: InternalIP first
    ips = tuple(dict.fromkeys(ip for ip in (_ip(a.get("address")) for a in ordered) if ip))
    name = _s(meta.get("name"))
    return name, Node(name, ips, _s((meta.get("labels") or {}).get(ZONE_LABEL)))


def service(obj: Obj) -> tuple[str, Service | None]:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    clean = tuple(ip for ip in (_ip(v) for v in ips if v != "None") if ip)
    return _key(meta), Service(_s(meta.get("namespace")), str(meta.get("name") or ""), clean)


def _owner(kind: str) -> Parser:
    def parse(obj: Obj) -> tuple[str, Owner | None]:
        meta = obj.get("metadata") or {}
        ns, name = _s(meta.get("namespace")), str(meta.get("name") or "")
        owner_kind, owner_name = _controller(meta)
        # Only owned objects are kept: an unowned ReplicaSet is its pods' owner as it is.
        return f"{ns}/{name}", (Owner(ns, kind, name, owner_kind, owner_name) if owner_kind else None)
    return parse


PARSERS: dict[str, Parser] = {
    "pods": pod,
    "nodes": node,
    "services": service,
    "replicasets": _owner("ReplicaSet"),
    "jobs": _owner("Job"),
}
