"""A userspace delay line between two network namespaces (this kernel has no netem).

Run as a process: `python -P delayline.py NS_A NS_B DELAY_MS`. It creates a TAP device `dl0` in each
namespace and forwards every frame from one to the other after DELAY_MS, so a round trip takes
2 x DELAY_MS. Prints "ready" once both devices exist. Used by the RTT and DNS latency tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import heapq
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def open_tap(netns: str, name: str) -> int:
    with open(f"/var/run/netns/{netns}") as ns:
        if _libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    os.set_blocking(fd, False)
    return fd


def main() -> None:
    ns_a, ns_b, delay_ms = sys.argv[1], sys.argv[2], float(sys.argv[3])
    delay = delay_ms / 1000
    fa, fb = open_tap(ns_a, "dl0"), open_tap(ns_b, "dl0")
    peer = {fa: fb, fb: fa}
    due: list[tuple[float, int, int, bytes]] = []  # (send time, seq, out fd, frame)
    seq = 0
    print("ready", flush=True)
    while True:
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 1.0
        readable, _, _ = select.select([fa, fb], [], [], timeout)
        now = time.monotonic()
        for fd in readable:
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                seq += 1
                heapq.heappush(due, (now + delay, seq, peer[fd], frame))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, out, frame = heapq.heappop(due)
            with contextlib.suppress(OSError):  # the other side is down: lost, as on a wire
                os.write(out, frame)


if __name__ == "__main__":
    main()
