"""Which interfaces the agent watches: include/exclude by name or /regex/, followed live via netlink.

Called by `agent.run`: `Selector` decides, `Watcher` reports links appearing and disappearing
(RTM_NEWLINK / RTM_DELLINK) from a background thread.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

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


class Watcher:
    """Calls `on_new(ifindex, name)` / `on_del(ifindex, name)` for link events until stopped."""

    def __init__(self, on_new: Callable[[int, str], None], on_del: Callable[[int, str], None]) -> None:
        from pyroute2 import IPRoute

        self._ipr: Any = IPRoute()
        self._ipr.bind()
        self._on_new, self._on_del = on_new, on_del
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="flowlake-links", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                messages = self._ipr.get()
            except Exception as exc:  # socket closed on stop, or a transient netlink error
                if not self._stop.is_set():
                    log.warning("agent: netlink watch error: %s", exc)
                return
            for msg in messages:
                event = msg.get("event")
                name = msg.get_attr("IFLA_IFNAME") if hasattr(msg, "get_attr") else None
                if name is None:
                    continue
                try:
                    if event == "RTM_NEWLINK":
                        self._on_new(msg["index"], name)
                    elif event == "RTM_DELLINK":
                        self._on_del(msg["index"], name)
                except Exception:  # one bad interface must never stop the watcher
                    log.exception("agent: handling %s for %s failed", event, name)

    def stop(self) -> None:
        self._stop.set()
        self._ipr.close()
