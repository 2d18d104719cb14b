"""Attaches the TC programs to interfaces (clsact, direct-action) and removes them without a trace.

Called by `agent.run` for each selected interface, also as interfaces come and go. Remembers what it
added so that stopping removes its filters, and the clsact qdisc only when it created it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("flowlake.agent")

CLSACT_INGRESS = 0xFFFFFFF2  # parent handles of the clsact qdisc's two hooks
CLSACT_EGRESS = 0xFFFFFFF3
FILTER_PRIO = 49152  # a fixed priority so our filters are recognisable and removable


@dataclass
class Attached:
    ifindex: int
    name: str
    created_qdisc: bool


class Attacher:
    """Owns the netlink socket and the set of interfaces our programs are attached to."""

    def __init__(self, ingress_fd: int, egress_fd: int) -> None:
        from pyroute2 import IPRoute

        self._ipr: Any = IPRoute()
        self.ingress_fd, self.egress_fd = ingress_fd, egress_fd
        self.attached: dict[int, Attached] = {}

    def attach(self, ifindex: int, name: str) -> None:
        """Add clsact (if missing) and both classifiers; raises OSError naming the interface on failure."""
        if ifindex in self.attached:
            return
        created = False
        if not self._has_clsact(ifindex):
            self._ipr.tc("add", "clsact", ifindex)
            created = True
        try:
            for parent, fd, label in ((CLSACT_INGRESS, self.ingress_fd, "ingress"),
                                      (CLSACT_EGRESS, self.egress_fd, "egress")):
                # replace, not add: filters left by an agent that crashed are taken over, not an error
                self._ipr.tc("replace-filter", "bpf", ifindex, ":1", fd=fd, name=f"flowlake_{label}",
                             parent=parent, prio=FILTER_PRIO, classid=1, direct_action=True)
        except Exception:
            self._remove(Attached(ifindex, name, created))
            raise
        self.attached[ifindex] = Attached(ifindex, name, created)
        log.info("agent: attached to %s (ifindex %d)", name, ifindex)

    def forget(self, ifindex: int) -> None:
        """The interface is gone (its filters and qdisc went with it)."""
        gone = self.attached.pop(ifindex, None)
        if gone:
            log.info("agent: interface %s (ifindex %d) removed", gone.name, ifindex)

    def detach_all(self) -> None:
        for att in list(self.attached.values()):
            self._remove(att)
        self.attached.clear()
        self._ipr.close()

    def _remove(self, att: Attached) -> None:
        try:
            if att.created_qdisc:
                self._ipr.tc("del", "clsact", att.ifindex)  # takes our filters with it
            else:
                for parent in (CLSACT_INGRESS, CLSACT_EGRESS):
                    self._ipr.tc("del-filter", "bpf", att.ifindex, ":1", parent=parent, prio=FILTER_PRIO)
            log.info("agent: detached from %s", att.name)
        except Exception as exc:  # the interface may be gone already: nothing left to remove
            log.debug("agent: detaching %s: %s", att.name, exc)

    def _has_clsact(self, ifindex: int) -> bool:
        return any(q.get_attr("TCA_KIND") == "clsact" for q in self._ipr.get_qdiscs(ifindex))
