"""VictoriaLogs on loopback: the real Loki-protocol receiver the Loki sink tests push to and read back from.

The binary is built from the Go module proxy by `build_victorialogs.sh` (skipped when already built).
It is started with `-loki.disableMessageParsing`, so each entry's `_msg` is exactly the line sent, and
with a 100-year retention, so the fixed past timestamps of test flows are kept. Tenants (X-Scope-OrgID)
keep each test's data apart: queries pass the same tenant as `AccountID`.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from tests.procs import free_port, wait_http

BUILD = Path(__file__).with_name("build_victorialogs.sh")
PERSIST_SECONDS = 1  # acknowledged entries reach the disk within this (-inmemoryDataFlushInterval)
_tenants = itertools.count(int(time.time()) % 100_000 * 100)


def binary() -> Path:
    """The victoria-logs binary, built on first use (about a minute; needs Go >= 1.26.5)."""
    done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building VictoriaLogs failed; run {BUILD} by hand to see why (needs Go >= 1.26.5 "
                           f"and the Go module proxy):\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def new_tenant() -> str:
    """A tenant id no other test in this session uses."""
    return str(next(_tenants))


class VictoriaLogs:
    """One VictoriaLogs process on 127.0.0.1, started and killed by PID."""

    def __init__(self, exe: Path, data_dir: Path, port: int | None = None) -> None:
        self.exe, self.data_dir = exe, data_dir
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.base = f"http://127.0.0.1:{self.port}"
        self.push_url = f"{self.base}/insert/loki/api/v1/push"

    def start(self, timeout: float = 30.0) -> VictoriaLogs:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.data_dir.parent / f"victorialogs-{self.port}.log"
        with log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [str(self.exe), f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={self.data_dir}",
                 "-retentionPeriod=100y", "-loki.disableMessageParsing", "-loggerLevel=WARN",
                 f"-inmemoryDataFlushInterval={PERSIST_SECONDS}s"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_http(f"{self.base}/health", self.proc, timeout):
            raise RuntimeError(f"VictoriaLogs did not start on port {self.port}; see {log_path}")
        return self

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed or answered any more."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def query(self, tenant: str, query: str = "*") -> list[dict[str, Any]]:
        """Every entry of a tenant (LogsQL `/select/logsql/query`), after forcing recent data to be searchable."""
        urllib.request.urlopen(f"{self.base}/internal/force_flush", timeout=10).read()
        data = urllib.parse.urlencode({"query": query}).encode()
        req = urllib.request.Request(f"{self.base}/select/logsql/query", data=data,
                                     headers={"AccountID": tenant, "ProjectID": "0"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            return [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]


def time_ns(rfc3339: str) -> int:
    """`_time` of a LogsQL result (RFC 3339, nanoseconds, UTC) as ns since the epoch."""
    return int(np.datetime64(rfc3339.rstrip("Z"), "ns").astype(np.int64))
