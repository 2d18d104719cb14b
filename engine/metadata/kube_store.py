"""The watched objects held in memory, with deleted ones kept for a grace period; fed by kube_watch.

Watch threads call `apply` per event and `replace` after a (re)list; both only update dicts under a
lock, so a burst of events costs no table work. `KubeMetadata` takes a `snapshot` when it rebuilds
the identity table (batched, at most every `kubernetes.table_interval_seconds`). A deleted object stays
as a tombstone for `grace_seconds` so flows that arrive late still enrich; a live object holding the
same IP wins over it at once (see kube_table).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from flowlake.engine.metadata.kube_objects import PARSERS, Obj, Record

KINDS: tuple[str, ...] = tuple(PARSERS)


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int  # when the record last changed address: among live pods sharing an IP the newest wins
    record: Record
    expires: float | None = None  # set once deleted: dropped at this clock time


@dataclass
class Snapshot:
    """Shallow copies of the entries of each kind, taken under the store lock."""

    entries: dict[str, list[Entry]] = field(default_factory=dict)


class KubeStore:
    """Live and recently deleted objects per kind, keyed by uid (pods, services) or name."""

    def __init__(self, grace_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace_seconds = grace_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._seq = 0
        self._next_expiry = float("inf")  # earliest tombstone deadline: expire() is free until then
        self.version = 0  # bumped on every change; the table is rebuilt when it moved

    def apply(self, kind: str, event: str, obj: Obj) -> None:
        """One watch event (ADDED, MODIFIED, DELETED) of a `kind` object."""
        key, record = PARSERS[kind](obj)
        with self._lock:
            if event == "DELETED" or record is None:
                self._delete(kind, key)
            else:
                self._put(kind, key, record)

    def replace(self, kind: str, objs: Iterable[Obj]) -> None:
        """The full list after a (re)list: objects missing from it were deleted meanwhile."""
        parsed = [PARSERS[kind](o) for o in objs]
        with self._lock:
            seen = set()
            for key, record in parsed:
                if record is None:
                    self._delete(kind, key)
                else:
                    seen.add(key)
                    self._put(kind, key, record)
            for key in [k for k, e in self._entries[kind].items() if e.expires is None and k not in seen]:
                self._delete(kind, key)

    def _put(self, kind: str, key: str, record: Record) -> None:
        old = self._entries[kind].get(key)
        if old is not None and old.expires is None and old.record == record:
            return
        if old is None or old.expires is not None or getattr(old.record, "ips", None) != getattr(record, "ips", None):
            self._seq += 1
            seq = self._seq
        else:
            seq = old.seq
        self._entries[kind][key] = Entry(seq, record)
        self.version += 1

    def _delete(self, kind: str, key: str) -> None:
        entry = self._entries[kind].get(key)
        if entry is None or entry.expires is not None:
            return  # unknown (a pod that finished before we listed it) or already a tombstone
        # A new Entry, not a mutation: snapshots being turned into a table keep what they saw.
        expires = self.clock() + self.grace_seconds
        self._entries[kind][key] = Entry(entry.seq, entry.record, expires)
        self._next_expiry = min(self._next_expiry, expires)
        self.version += 1

    def expire(self) -> int:
        """Drop tombstones past their grace period; returns how many."""
        now = self.clock()
        with self._lock:
            if now < self._next_expiry:
                return 0
            dropped, self._next_expiry = 0, float("inf")
            for entries in self._entries.values():
                for key, e in list(entries.items()):
                    if e.expires is None:
                        continue
                    if e.expires <= now:
                        del entries[key]
                        dropped += 1
                    else:
                        self._next_expiry = min(self._next_expiry, e.expires)
            if dropped:
                self.version += 1
            return dropped

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot({k: list(v.values()) for k, v in self._entries.items()})

    def counts(self) -> dict[tuple[str, str], int]:
        """(kind, live|deleted) -> objects held."""
        with self._lock:
            out: dict[tuple[str, str], int] = {}
            for kind, entries in self._entries.items():
                dead = sum(1 for e in entries.values() if e.expires is not None)
                out[(kind, "live")], out[(kind, "deleted")] = len(entries) - dead, dead
            return out
