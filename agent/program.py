"""Builds, prints and loads the kernel program: the agent's configuration becomes #defines.

Called by `agent.run` at start and by `flowlake agent --print-bpf`. The C sources in `bpf/` are
concatenated with their local headers inlined, so the printed text is exactly what bcc compiles.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from flowlake.agent.bccload import import_bcc
from flowlake.engine.errors import FlowlakeError


class ProgramError(FlowlakeError):
    """The kernel program could not be built or loaded; the message says what to install or check."""


_LOCAL_INCLUDE = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)


@dataclass(frozen=True)
class ProgramConfig:
    """Everything compiled into the kernel program (changing any of it means recompiling)."""

    sampling: int = 1
    cache_max_flows: int = 5000
    ringbuf_pages: int = 64  # 256 KiB ring buffer for map-full fallback events
    dns: bool = False
    dns_port: int = 53
    rtt: bool = False
    drops: bool = False
    filters: bool = False
    offsets: dict[str, int] = field(default_factory=dict)  # BTF member offsets for the drop tracepoint

    def defines(self) -> dict[str, int]:
        out = {"SAMPLING": max(1, self.sampling), "CACHE_MAX_FLOWS": self.cache_max_flows,
               "RINGBUF_PAGES": self.ringbuf_pages, "DNS_PORT": self.dns_port}
        for flag, on in (("ENABLE_DNS", self.dns), ("ENABLE_RTT", self.rtt), ("ENABLE_DROPS", self.drops),
                         ("ENABLE_FILTER", self.filters)):
            if on:
                out[flag] = 1
        if self.drops:
            out.update(self.offsets)
        return out


def _source(name: str, seen: set[str]) -> str:
    """A bpf/ file with its local #include "x.h" lines replaced by the header text (once each)."""
    text = resources.files("flowlake.bpf").joinpath(name).read_text()

    def inline(m: re.Match[str]) -> str:
        header = m.group(1)
        if header in seen:
            return f"/* {header} already included */"
        seen.add(header)
        return f"/* ---- {header} ---- */\n{_source(header, seen)}\n/* ---- end {header} ---- */"

    return _LOCAL_INCLUDE.sub(inline, text)


def render(cfg: ProgramConfig) -> str:
    """The complete C text bcc compiles for this configuration."""
    header = "\n".join(f"#define {k} {v}" for k, v in cfg.defines().items())
    parts = [f"/* flowlake agent program: generated configuration */\n{header}\n", _source("flows.c", set())]
    if cfg.drops:
        parts.append(_source("drops.c", {"flows.h"}))
    return "\n".join(parts)


def load(cfg: ProgramConfig) -> tuple[ModuleType, Any]:
    """Compile and load the program; returns (the bcc module, the BPF object)."""
    bcc = import_bcc()
    text = render(cfg)
    release = os.uname().release
    if not Path(f"/lib/modules/{release}/build").exists():
        raise ProgramError(f"no kernel headers at /lib/modules/{release}/build: install linux-headers-{release} "
                           "(or Debian's linux-headers-amd64; `make up` links them for other kernels)")
    try:
        # -w: headers of another kernel version warn a lot; the verifier is the real judge.
        return bcc, bcc.BPF(text=text.encode(), cflags=["-w", "-O2"])
    except Exception as exc:  # bcc raises plain Exception with the compiler/verifier log on stderr
        raise ProgramError(f"the kernel refused or could not compile the flow program ({exc}); see the log "
                           "above. Needs Linux >= 5.8 with BPF ring buffers, root or CAP_BPF+CAP_PERFMON+"
                           "CAP_NET_ADMIN, and kernel headers; `flowlake agent --print-bpf` shows the source"
                           ) from exc
