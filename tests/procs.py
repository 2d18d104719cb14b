"""Process helpers shared by the tests that start `flowlake` commands as real processes."""

from __future__ import annotations

import subprocess
from typing import Any


def finish(proc: subprocess.Popen[Any]) -> None:
    """Kill a process that is still running (a failed test's leftover) and reap it."""
    if proc.poll() is None:
        proc.kill()
        proc.communicate()
