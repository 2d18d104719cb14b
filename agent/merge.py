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


def lookup(keys: np.ndarray, table_keys: np.ndarray, table_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values aligned with `keys`, found mask); missing rows hold zeros."""
    out = np.zeros(len(keys), table_values.dtype)
    if len(table_keys) == 0 or len(keys) == 0:
        return out, np.zeros(len(keys), bool)
    tk = key_bytes(table_keys)
    order = np.argsort(tk, kind="stable")
    sorted_keys = tk[order]
    want = key_bytes(keys)
    pos = np.searchsorted(sorted_keys, want).clip(max=len(sorted_keys) - 1)
    found = sorted_keys[pos] == want
    out[found] = table_values[order[pos[found]]]
    return out, found


def union_keys(main: np.ndarray, *others: np.ndarray) -> np.ndarray:
    """`main` followed by the keys of `others` that are not in `main` (feature-only flows)."""
    if not any(len(o) for o in others):
        return main
    extra = np.concatenate([o for o in others if len(o)])
    extra = extra[np.unique(key_bytes(extra), return_index=True)[1]]
    _, in_main = lookup(extra, main, np.zeros(len(main), np.uint8))
    return np.concatenate([main, extra[~in_main]])


def fold_events(keys: np.ndarray, stats: np.ndarray, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Add ring-buffer events (one packet each, map was full) into the drained flows, by key."""
    if len(events) == 0:
        return keys, stats
    all_keys = np.concatenate([keys, events["key"]])
    all_stats = np.concatenate([stats, events["stats"]])
    uniq, first, inverse = np.unique(key_bytes(all_keys), return_index=True, return_inverse=True)
    out = all_stats[first].copy()
    bytes_, packets = np.zeros(len(uniq), np.uint64), np.zeros(len(uniq), np.uint64)
    np.add.at(bytes_, inverse, all_stats["bytes"])
    np.add.at(packets, inverse, all_stats["packets"])
    first_ns = np.full(len(uniq), np.iinfo(np.uint64).max, np.uint64)
    last_ns = np.zeros(len(uniq), np.uint64)
    flags = np.zeros(len(uniq), np.uint32)
    np.minimum.at(first_ns, inverse, all_stats["first_ns"])
    np.maximum.at(last_ns, inverse, all_stats["last_ns"])
    np.bitwise_or.at(flags, inverse, all_stats["flags"])
    out["bytes"], out["packets"] = bytes_, packets.astype(np.uint32)
    out["first_ns"], out["last_ns"], out["flags"] = first_ns, last_ns, flags
    return all_keys[first], out
