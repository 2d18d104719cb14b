"""Live synthetic flows: `rate` flow records per second stamped with the current time, forever.

Used by `flowlake up` (a feed for the embedded processor) and `flowlake synth --live`. Each tick
generates the flows that ended since the previous tick with `flows.generate`, so live data has the
same realism and ground truth as a batch generation; ticks are independent random streams of `seed`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from flowlake.engine.errors import ConfigError
from flowlake.engine.synth import flows
from flowlake.engine.synth.cluster import Cluster


def stream(cluster: Cluster, rate: float, seed: int, *, interval: float = 1.0, sampling: int = 1,
           stop: threading.Event | None = None, ticks: int | None = None,
           clock: Callable[[], float] = time.time) -> Iterator[flows.SynthFlows]:
    """Yield one `SynthFlows` per `interval` seconds covering (previous tick, now].

    Flow counts follow the wall clock (a slow consumer gets bigger batches, not a lower rate). Stops
    when `stop` is set or after `ticks` ticks; the first tick covers the `interval` before the call.
    """
    if rate <= 0 or interval <= 0:
        raise ConfigError(f"synth --live: --rate and the interval must be > 0 (got {rate}, {interval})")
    stop = stop or threading.Event()
    prev_ms = int(clock() * 1000) - int(interval * 1000)
    due = clock()
    carry = 0.0
    tick = 0
    while not stop.is_set() and (ticks is None or tick < ticks):
        now = clock()
        if now < due and stop.wait(due - now):
            return
        now_ms = max(int(clock() * 1000), prev_ms + 1)
        want = rate * (now_ms - prev_ms) / 1000 + carry
        n = int(want)
        carry = want - n
        tick += 1
        due = max(due + interval, clock() - interval)  # fell far behind: do not burst to catch up
        if n:
            yield flows.generate(cluster, prev_ms, now_ms, n, seed, sampling, stream=tick)
        prev_ms = now_ms
