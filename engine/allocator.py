"""Memory allocator settings for flowlake's own processes; `cli.main` applies them before Polars loads.

Polars allocates through its bundled jemalloc and, on import, sets it to hand freed pages back to the
kernel within half a second. The processor frees and re-allocates the same few hundred megabytes every
lake flush (a sorted copy of 500k flows) and every metrics aggregation, so each flush paid for fresh
pages again: at 20k pods, ~700k page faults and ~2 CPU-s in the kernel per 1M flows. Keeping freed pages
for 30 s (`dirty_decay_ms`/`muzzy_decay_ms`) lets a busy process reuse them (~150k faults, ~0.5 CPU-s)
and still returns them once it is idle. Options a user puts in `_RJEM_MALLOC_CONF` come after ours and
win (Polars reads the variable, keeping later options over earlier ones).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

ENV = "_RJEM_MALLOC_CONF"  # read once, when Polars' jemalloc initializes
DEFAULT = "dirty_decay_ms:30000,muzzy_decay_ms:30000"
# What `import polars` writes into the environment: a parent process that imported Polars passes it on to
# its children (`flowlake up`, benchmarks, tests), and it is not a choice to keep.
POLARS_DEFAULT = "dirty_decay_ms:500,muzzy_decay_ms:1000"


def configure() -> None:
    """Put our jemalloc options first in the environment; too late once Polars is loaded."""
    if "polars" in sys.modules:
        log.debug("polars already loaded: %s=%s not applied", ENV, DEFAULT)
        return
    chosen = os.environ.get(ENV, "").removeprefix(POLARS_DEFAULT).strip(",")
    os.environ[ENV] = f"{DEFAULT},{chosen}" if chosen and chosen != DEFAULT else DEFAULT
