"""Aligns the feature maps (DNS, RTT, drops) and ring-buffer events with the flow map, by flow key.

Called by `agent.run` after each drain. All of it is numpy over whole arrays: keys are compared as
40-byte opaque values (np.void), aligned with unique/searchsorted, aggregated with ufunc.at.
"""

from __future__ import annotations

import numpy as np

from flowlake.agent import records


def key_bytes(keys: np.ndarray) -> np.ndarray:
    """The flow keys as one opaque 40-byte value each (sortable, comparable)."""
    out: np.ndarray = np.ascontiguousarray(keys).view(f"V{records.KEY.itemsize}")
    return out


def is_v4(keys: np.ndarray) -> np.ndarray:
    """True where the source address is v4-mapped (::ffff:a.b.c.d)."""
    raw = np.frombuffer(np.ascontiguousarray(keys["src_ip"]).tobytes(), np.uint8).reshape(-1, 16)
    mapped: np.ndarray = (raw[:, :10] == 0).all(axis=1) & (raw[:, 10] == 0xFF) & (raw[:, 11] == 0xFF)
    return mapped


def reverse(keys: np.ndarray) -> np.ndarray:
    """The keys of the opposite direction (source and destination swapped)."""
    out = keys.copy()
    out["src_ip"], out["dst_ip"] = keys["dst_ip"], keys["src_ip"]
    out["src_port"], out["dst_port"] = keys["dst_port"], keys["src_port"]
    return out


class Index:
    """A feature map's (keys, values), sorted once per drain so every chunk of flows can look up in it."""

    def __init__(self, table_keys: np.ndarray, table_values: np.ndarray) -> None:
        tk = key_bytes(table_keys)
        order = np.argsort(tk, kind="stable")
        self.keys, self.sorted, self.values = table_keys, tk[order], table_values[order]

    def get(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(values aligned with `keys`, found mask); missing rows hold zeros."""
        out = np.zeros(len(keys), self.values.dtype)
        if len(self.sorted) == 0 or len(keys) == 0:
            return out, np.zeros(len(keys), bool)
        want = key_bytes(keys)
        pos = np.searchsorted(self.sorted, want).clip(max=len(self.sorted) - 1)
        found = self.sorted[pos] == want
        out[found] = self.values[pos[found]]
        return out, found


def lookup(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values aligned with `keys`, found mask) for a one-off lookup."""
    return Index(table_keys, table_values).get(keys)


def missing_keys(main: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """Distinct keys of `others` that are not in `main` (flows seen only by a feature map)."""
    if not any(len(o) for o in others):
        return main[:0]
    extra = np.concatenate([o for o in others if len(o)])
    extra = extra[np.unique(key_bytes(extra), return_index=True)[1]]
    _, in_main = lookup(extra, main, np.zeros(len(main), np.uint8))
    only: np.ndarray = extra[~in_main]
    return only


def fold_events(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring-buffer events (one packet each, sent while the map was full) folded into one row per flow.

    The first-seen-interface rule of the kernel holds here too: only the packets of the interface a
    flow was first seen on count; its other interfaces do not add bytes or packets again.
    """
    # In time order, the first event of each key (np.unique's return_index) is where it was first seen.
    events = events[np.argsort(events["stats"]["first_ns"], kind="stable")]
    uniq, first, inverse = np.unique(key_bytes(events["key"]), return_index=True, return_inverse=True)
    stats = events["stats"]
    counted = stats["if_first"] == stats["if_first"][first][inverse]
    out = stats[first].copy()
    bytes_, packets = np.zeros(len(uniq), np.uint64), np.zeros(len(uniq), np.uint64)
    np.add.at(bytes_, inverse[counted], stats["bytes"][counted])
    np.add.at(packets, inverse[counted], stats["packets"][counted])
    last_ns, flags = np.zeros(len(uniq), np.uint64), np.zeros(len(uniq), np.uint32)
    np.maximum.at(last_ns, inverse, stats["last_ns"])
    np.bitwise_or.at(flags, inverse, stats["flags"])
    out["bytes"], out["packets"], out["last_ns"], out["flags"] = bytes_, packets.astype(np.uint32), last_ns, flags
    return events["key"][first], out
