"""One UDP or TCP connection to an IPFIX collector; used by `sinks.ipfix`.

UDP sockets are connected too, so a collector that is not listening on loopback or a reachable host shows
up as ECONNREFUSED on a later send (the kernel reports the ICMP port-unreachable of an earlier datagram)
instead of datagrams vanishing unnoticed forever. TCP is one stream; each new connection is a new IPFIX
Transport Session, which the sink answers by sending its templates first.
"""

from __future__ import annotations

import socket


class Transport:
    """`connect` opens the socket when none is open; `send` writes one message; errors close the socket."""

    def __init__(self, host: str, port: int, protocol: str, timeout: float) -> None:
        self.host, self.port, self.protocol, self.timeout = host, port, protocol, timeout
        self._sock: socket.socket | None = None

    @property
    def address(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"

    def connect(self) -> bool:
        """Open the connection if none is open; True when this opened a new one."""
        if self._sock is not None:
            return False
        kind = socket.SOCK_STREAM if self.protocol == "tcp" else socket.SOCK_DGRAM
        family, _, _, _, addr = socket.getaddrinfo(self.host, self.port, type=kind)[0]
        sock = socket.socket(family, kind)
        sock.settimeout(self.timeout)
        try:
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        if kind == socket.SOCK_DGRAM:  # room for a burst of messages while the collector catches up
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self._sock = sock
        return True

    def send(self, message: bytes) -> None:
        """Send one IPFIX Message whole; OSError (refused, reset, timeout) closes the connection."""
        assert self._sock is not None, "connect() first"
        try:
            if self.protocol == "tcp":
                self._sock.sendall(message)
            else:
                self._sock.send(message)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
