"""An IPFIX collector for the tests: a decoder written from RFC 7011 alone, behind a TCP or UDP listener.

It shares no code with `flowlake.engine.sinks.ipfix*`: it parses message headers, Template Sets and Data
Sets (fixed and variable-length fields, enterprise bits) byte by byte with `struct`, keeping templates per
Transport Session (one TCP connection, or the UDP peer) and Observation Domain, as §8 says. It is what the
tests use where goflow2 cannot go: IPFIX over TCP (goflow2 listens on UDP only), the message headers
(sequence numbers, export time) and templates themselves. Records come out as {(pen, ie): bytes}.
"""

from __future__ import annotations

import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

Key = tuple[int, int]  # (private enterprise number or 0, information element id)


@dataclass
class Message:
    version: int
    length: int
    export_time: int
    sequence: int
    domain: int
    templates: dict[int, list[tuple[Key, int]]] = field(default_factory=dict)  # template sets in this message
    records: list[dict[Key, bytes]] = field(default_factory=list)


class DecodeError(ValueError):
    pass


class Session:
    """The templates of one Transport Session; `decode` takes one whole IPFIX Message."""

    def __init__(self) -> None:
        self.templates: dict[tuple[int, int], list[tuple[Key, int]]] = {}  # (domain, template id) -> fields

    def decode(self, data: bytes) -> Message:
        if len(data) < 16:
            raise DecodeError("message shorter than its 16-octet header")
        version, length, export_time, sequence, domain = struct.unpack_from("!HHIII", data, 0)
        if version != 10 or length != len(data):
            raise DecodeError(f"version {version}, length {length} for {len(data)} octets")
        msg = Message(version, length, export_time, sequence, domain)
        pos = 16
        while pos < length:
            set_id, set_len = struct.unpack_from("!HH", data, pos)
            if set_len < 4 or pos + set_len > length:
                raise DecodeError(f"set {set_id} of length {set_len} at {pos} overruns the message")
            body = data[pos + 4:pos + set_len]
            if set_id == 2:
                self._templates(body, domain, msg)
            elif set_id >= 256:
                self._data(body, self.templates[(domain, set_id)], msg)
            pos += set_len
        return msg

    def _templates(self, body: bytes, domain: int, msg: Message) -> None:
        pos = 0
        while pos + 4 <= len(body):
            tid, count = struct.unpack_from("!HH", body, pos)
            pos += 4
            fields: list[tuple[Key, int]] = []
            for _ in range(count):
                ie, flen = struct.unpack_from("!HH", body, pos)
                pos += 4
                pen = 0
                if ie & 0x8000:  # enterprise bit: a 4-octet enterprise number follows (§3.2)
                    pen = struct.unpack_from("!I", body, pos)[0]
                    pos += 4
                fields.append(((pen, ie & 0x7FFF), flen))
            self.templates[(domain, tid)] = fields
            msg.templates[tid] = fields

    @staticmethod
    def _data(body: bytes, fields: list[tuple[Key, int]], msg: Message) -> None:
        pos = 0
        min_len = sum(1 if n == 0xFFFF else n for _, n in fields)
        while len(body) - pos >= min_len and min_len > 0:  # the rest would be padding (§3.3.1)
            record: dict[Key, bytes] = {}
            for key, flen in fields:
                if flen == 0xFFFF:  # variable length (§7): 1 octet, or 255 then 2 octets
                    flen = body[pos]
                    pos += 1
                    if flen == 255:
                        flen = struct.unpack_from("!H", body, pos)[0]
                        pos += 2
                if pos + flen > len(body):
                    raise DecodeError("record overruns its set")
                record[key] = body[pos:pos + flen]
                pos += flen
            msg.records.append(record)


class Collector:
    """Listens on 127.0.0.1 (port 0), decodes every message it gets; `messages` in arrival order."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.messages: list[Message] = []
        self.sessions = 0  # TCP connections accepted
        self.errors: list[str] = []
        self._lock = threading.Lock()
        collector = self

        class Tcp(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                session = Session()
                with collector._lock:
                    collector.sessions += 1
                while True:
                    head = self.rfile.read(4)
                    if len(head) < 4:
                        return
                    length = struct.unpack("!H", head[2:4])[0]
                    collector._take(session, head + self.rfile.read(length - 4))

        class Udp(socketserver.DatagramRequestHandler):
            def handle(self) -> None:
                collector._take(collector._udp_session(self.client_address), self.request[0])

        self._udp: dict[Any, Session] = {}
        server_cls = socketserver.ThreadingTCPServer if protocol == "tcp" else socketserver.UDPServer
        self.server: socketserver.BaseServer = server_cls(("127.0.0.1", 0), Tcp if protocol == "tcp" else Udp)
        if protocol == "udp":
            sock: socket.socket = self.server.socket  # type: ignore[attr-defined]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.server.daemon_threads = True  # type: ignore[attr-defined]
        self.port: int = self.server.server_address[1]  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _udp_session(self, peer: Any) -> Session:
        return self._udp.setdefault(peer, Session())

    def _take(self, session: Session, data: bytes) -> None:
        try:
            msg = session.decode(data)
        except (DecodeError, KeyError, struct.error) as exc:
            with self._lock:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            return
        with self._lock:
            self.messages.append(msg)

    def records(self) -> list[dict[Key, bytes]]:
        with self._lock:
            return [r for m in self.messages for r in m.records]

    def wait_records(self, count: int, timeout: float = 10.0) -> list[dict[Key, bytes]]:
        deadline = time.monotonic() + timeout
        while len(got := self.records()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return got

    def settled(self, quiet: float = 0.2, timeout: float = 10.0) -> list[dict[Key, bytes]]:
        """The records once none arrived for `quiet` seconds (what was sent has been read)."""
        deadline = time.monotonic() + timeout
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            got = self.records()
            if len(got) != seen:
                seen, since = len(got), time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
            time.sleep(0.02)
        return self.records()

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
