"""What the drop tracepoint needs from the running kernel: record offsets and drop reason names.

Read from tracefs (`events/skb/kfree_skb/format`, mounted if absent) by `agent.run` before
compiling; never from header files, which may belong to another kernel version.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

TRACEFS = Path("/sys/kernel/tracing")
FORMAT = "events/skb/kfree_skb/format"
_FIELD = re.compile(r"field:[^;]*?\b(\w+);\s*offset:(\d+);\s*size:(\d+);")
_SYMBOL = re.compile(r"\{\s*(\d+),\s*\"(\w+)\"\s*\}")


class TracefsError(RuntimeError):
    """tracefs or the kfree_skb tracepoint is unavailable; the message says what to do."""


def format_text(root: Path = TRACEFS) -> str:
    path = root / FORMAT
    if not path.exists() and not (root / "events").exists():
        # tracefs is not mounted here (containers often lack it): mount it, as bpftrace does.
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(root)], capture_output=True, check=False)
    try:
        return path.read_text()
    except OSError as exc:
        raise TracefsError(f"cannot read {path} ({exc}); the PacketDrop feature needs tracefs "
                           f"(mount -t tracefs nodev {root}) and the skb:kfree_skb tracepoint") from exc


def record_offsets(text: str) -> dict[str, int]:
    """-D constants for the fields the program reads from the tracepoint record."""
    fields = {name: int(off) for name, off, _size in _FIELD.findall(text)}
    missing = [f for f in ("skbaddr", "protocol", "reason") if f not in fields]
    if missing:
        raise TracefsError(f"skb:kfree_skb has no field(s) {missing} on this kernel; PacketDrop needs "
                           "Linux >= 5.17 (drop reasons)")
    names = reason_names(text)
    drops = [n for n, name in names.items() if name not in ("NOT_DROPPED_YET", "CONSUMED")]
    return {"TP_SKBADDR_OFF": fields["skbaddr"], "TP_PROTOCOL_OFF": fields["protocol"],
            "TP_REASON_OFF": fields["reason"], "DROP_REASON_MIN": min(drops) if drops else 1}


def reason_names(text: str) -> dict[int, str]:
    """Drop reason number -> name (without the SKB_DROP_REASON_ prefix), from the print fmt line."""
    fmt = next((line for line in text.splitlines() if line.startswith("print fmt:")), "")
    return {int(num): name for num, name in _SYMBOL.findall(fmt)}
