"""Which interfaces the agent watches: include/exclude by name or /regex/, followed live via netlink.

Called by `agent.run`: `Selector` decides, `Watcher` reports links appearing and disappearing
(RTM_NEWLINK / RTM_DELLINK) from a background thread reading an rtnetlink socket.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
from collections.abc import Callable

log = logging.getLogger("flowlake.agent")


class Selector:
    """NetObserv semantics: empty include = all; exclude wins; `/regex/` entries are regexes."""

    def __init__(self, include: list[str], exclude: list[str]) -> None:
        self.include = [self._compile(p) for p in include]
        self.exclude = [self._compile(p) for p in exclude]

    @staticmethod
    def _compile(pattern: str) -> re.Pattern[str]:
        if len(pattern) > 1 and pattern.startswith("/") and pattern.endswith("/"):
            return re.compile(pattern[1:-1])
        return re.compile(re.escape(pattern) + r"\Z")

    def wants(self, name: str) -> bool:
        if any(p.match(name) for p in self.exclude):
            return False
        return not self.include or any(p.match(name) for p in self.include)


def current_links() -> list[tuple[int, str]]:
    """(ifindex, name) of every link in this network namespace."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [(link["index"], link.get_attr("IFLA_IFNAME")) for link in ipr.get_links()]


RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFLA_IFNAME = 3


def parse_link_messages(data: bytes) -> list[tuple[int, int, str]]:
    """(message type, ifindex, name) for each RTM_NEWLINK/RTM_DELLINK in a netlink datagram."""
    out = []
    pos = 0
    while pos + 16 <= len(data):
        length, mtype = struct.unpack_from("=IH", data, pos)
        if length < 16:
            break
        if mtype in (RTM_NEWLINK, RTM_DELLINK) and pos + 32 <= len(data):
            (ifindex,) = struct.unpack_from("=i", data, pos + 20)
            attr, end = pos + 32, min(pos + length, len(data))  # a truncated message stops at the data
            while attr + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, attr)
                if alen < 4:
                    break
                if atype == IFLA_IFNAME:
                    name = data[attr + 4:min(attr + alen, end)].split(b"\0", 1)[0]
                    out.append((mtype, ifindex, name.decode("utf-8", "replace")))
                    break
                attr += (alen + 3) & ~3
        pos += (length + 3) & ~3
    return out


class Watcher:
    """Calls `on_new(ifindex, name)` / `on_del(ifindex, name)` for link events until stopped.

    A plain rtnetlink socket subscribed to RTMGRP_LINK, opened in the caller's network namespace
    (the one the agent watches), read with a timeout so `stop()` is prompt.
    """

    def __init__(self, on_new: Callable[[int, str], None], on_del: Callable[[int, str], None],
                 resync: Callable[[], None] | None = None) -> None:
        self._resync = resync
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.bind((0, RTMGRP_LINK))
        self._sock.settimeout(0.2)
        self._on_new, self._on_del = on_new, on_del
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flowlake-links", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as exc:  # ENOBUFS after a burst: events were lost; list the links again
                if self._stop.is_set():
                    return
                log.warning("agent: netlink watch error (%s); re-reading the interface list", exc)
                if self._resync is not None:
                    try:
                        self._resync()
                    except Exception:
                        log.exception("agent: re-reading the interface list failed")
                continue
            for mtype, ifindex, name in parse_link_messages(data):
                try:
                    (self._on_new if mtype == RTM_NEWLINK else self._on_del)(ifindex, name)
                except Exception:  # one bad interface must never stop the watcher
                    log.exception("agent: handling a link event for %s failed", name)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()
