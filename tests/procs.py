"""Process helpers shared by the tests that start `flowlake` commands as real processes."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any


def free_port() -> int:
    """A TCP port free on loopback right now (tests start servers on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """Wait until `proc` listens on `port`; fail at once if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"process exited early with {proc.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} never opened")


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float) -> bool:
    """Poll `url` until it answers 200 (True); False once `proc` exited or `timeout` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def flowlake(*argv: str) -> subprocess.Popen[bytes]:
    """`flowlake ARGV...` as a child process of this interpreter (warnings and errors logged only)."""
    return subprocess.Popen([sys.executable, "-P", "-m", "flowlake.engine.cli", "--log-level", "WARNING", *argv])


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
