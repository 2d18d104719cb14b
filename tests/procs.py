"""Process helpers shared by the tests that start `flowlake` commands as real processes."""

from __future__ import annotations

import signal
import subprocess
from typing import Any


def finish(proc: subprocess.Popen[Any], grace: float = 30.0) -> None:
    """Stop a process that is still running (a failed test's leftover) and reap it.

    SIGTERM first, so commands that own resources (namespaces, qdiscs, children) clean up; SIGKILL
    only if it does not stop within `grace` seconds.
    """
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.communicate(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
