"""goflow2 on loopback: the real IPFIX collector (NetFlow v10 over UDP) the IPFIX sink tests send to.

The binary is built from the Go module proxy by `build_goflow2.sh` (skipped when already built). It runs
with `-listen netflow://127.0.0.1:PORT -format json -transport file` and the mapping of
`ipfix_view.goflow2_mapping`, which makes it decode our enterprise elements (PEN 2) into named JSON fields.
Each test reads the lines appended since it started (`mark` / `lines_since`). Without Go or the module proxy
the tests skip, unless FLOWLAKE_REQUIRE_GOFLOW2=1 (CI), where that is a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.procs import wait_http
from tests.sinks import ipfix_view, victorialogs

BUILD = Path(__file__).with_name("build_goflow2.sh")
REQUIRE = os.environ.get("FLOWLAKE_REQUIRE_GOFLOW2") == "1"


class Unavailable(RuntimeError):
    """goflow2 cannot be built or started here; the message says why."""


def binary() -> Path:
    """The goflow2 binary (FLOWLAKE_GOFLOW2 overrides), built on first use (about 20 s)."""
    override = os.environ.get("FLOWLAKE_GOFLOW2")
    if override:
        return Path(override)
    try:
        done = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, timeout=900, check=False)
    except OSError as exc:
        raise Unavailable(f"cannot run {BUILD}: {exc}") from exc
    if done.returncode != 0:
        raise Unavailable(f"building goflow2 failed; run {BUILD} by hand to see why (needs Go and the Go module "
                          f"proxy):\n{done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class GoFlow2:
    """One goflow2 process on 127.0.0.1, started and stopped by PID."""

    def __init__(self, exe: Path, workdir: Path) -> None:
        self.exe, self.dir = exe, workdir
        self.port = victorialogs.free_port()  # UDP and TCP port spaces differ, but a free TCP port will do
        self.http_port = victorialogs.free_port()
        self.out = workdir / "flows.json"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> GoFlow2:
        self.dir.mkdir(parents=True, exist_ok=True)
        mapping = self.dir / "mapping.yaml"
        mapping.write_text(ipfix_view.goflow2_mapping())
        self.out.touch()
        log_path = self.dir / "goflow2.log"
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                # one worker: with two, goflow2's file transport sometimes joins two JSON lines into one
                [str(self.exe), f"-listen=netflow://127.0.0.1:{self.port}?workers=1",
                 f"-addr=127.0.0.1:{self.http_port}", "-format=json", "-transport=file",
                 f"-transport.file={self.out}", f"-mapping={mapping}", "-loglevel=warn"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        if not wait_http(f"http://127.0.0.1:{self.http_port}/metrics", self.proc, timeout):
            raise Unavailable(f"goflow2 did not start on port {self.port}; see {log_path}")
        return self

    def mark(self) -> int:
        """The output's current size: `lines_since(mark)` returns what arrives after it."""
        return self.out.stat().st_size

    def lines_since(self, mark: int, want: int | None = None, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Decoded flows written after `mark`: `want` of them, or whatever arrived once 0.3 s pass without more."""
        deadline = time.monotonic() + timeout
        seen, quiet_since = -1, time.monotonic()
        while True:
            with self.out.open("rb") as f:
                f.seek(mark)
                data = f.read()
            lines = data.split(b"\n")[:-1]  # a partly written last line waits for the next round
            if len(lines) != seen:
                seen, quiet_since = len(lines), time.monotonic()
            done = len(lines) >= want if want is not None else time.monotonic() - quiet_since > 0.3
            if done or time.monotonic() > deadline:
                return [json.loads(line) for line in lines]
            time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
