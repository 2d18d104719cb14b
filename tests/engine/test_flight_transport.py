"""Arrow Flight ingest against a real server on loopback: concurrency and bad input."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from flowlake.engine import schema, selfmetrics, transport
from flowlake.engine.errors import SchemaError, TransportError
from flowlake.engine.transport.flight import FlowFlightServer, location
from tests.conftest import BASE_MS, make_batch


class Collector:
    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.lock = threading.Lock()

    def __call__(self, batch: pa.RecordBatch, transport: str) -> None:
        valid = schema.validate(batch)
        with self.lock:
            self.batches.append(valid)  # type: ignore[arg-type]

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b in self.batches)


@pytest.fixture
def server() -> Iterator[tuple[FlowFlightServer, Collector]]:
    sink = Collector()
    srv = FlowFlightServer("grpc://127.0.0.1:0", sink)
    yield srv, sink
    srv.shutdown()


def _url(srv: FlowFlightServer) -> str:
    return f"grpc://127.0.0.1:{srv.port}"


def rejected(reason: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value(
        "flowlake_ingest_rejected_batches_total", {"transport": "grpc", "reason": reason}) or 0.0


def test_location_defaults_port_2055() -> None:
    assert location("grpc://collector") == "grpc+tcp://collector:2055"
    assert location("grpc+tls://c:9999") == "grpc+tls://c:9999"
    with pytest.raises(TransportError, match="use grpc://HOST:PORT"):
        location("http://x")


def test_unknown_scheme_lists_valid_ones() -> None:
    with pytest.raises(TransportError, match="valid schemes: grpc"):
        transport.open_sender("ftp://x")


def test_concurrent_clients_all_delivered(server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    errors: list[BaseException] = []

    def client(k: int) -> None:
        try:
            sender = transport.open_sender(_url(srv))
            sender.send([make_batch(1000, seed=k) for _ in range(5)])
            sender.close()
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sink.rows == 8 * 5 * 1000


def raw_put(srv: FlowFlightServer, batches: list[pa.RecordBatch]) -> None:
    """What a client in another language does: a plain Flight do_put, no client-side validation."""
    client = flight.FlightClient(f"grpc+tcp://127.0.0.1:{srv.port}")
    writer, _ = client.do_put(flight.FlightDescriptor.for_path("flows"), batches[0].schema)
    try:
        for b in batches:
            writer.write_batch(b)
    finally:
        writer.close()
        client.close()


def test_sender_validates_before_sending(server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    assert sink.rows == 0
    before = rejected("schema")
    bad = pa.RecordBatch.from_pydict({"TimeFlowStartMs": [1], "SrcPort": ["http"]})
    with pytest.raises(SchemaError) as err:
        transport.open_sender(_url(srv)).send([bad])
    assert "SrcPort: got string, expected uint16" in str(err.value)
    assert rejected("schema") == before  # never reached the server


def test_server_rejects_bad_batch_with_reason_and_others_unaffected(
        server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    before = rejected("schema")
    bad = pa.RecordBatch.from_pydict({"TimeFlowStartMs": [1], "SrcPort": ["http"]})
    with pytest.raises(pa.ArrowInvalid) as err:
        raw_put(srv, [bad])
    message = str(err.value)
    assert "SrcPort" in message and "expected uint16" in message and "Bytes: required" in message
    assert rejected("schema") == before + 1
    assert transport.open_sender(_url(srv)).send([make_batch(7)]) == 7  # everyone else is served
    assert sink.rows == 7


def test_rejection_mid_stream_names_the_batch(server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    good = make_batch(5)
    idx = good.schema.get_field_index("Bytes")
    bad = good.set_column(idx, good.schema.field("Bytes"), pa.array([1, None, 3, 4, 5], pa.uint64()))
    with pytest.raises(pa.ArrowInvalid, match=r"Bytes: required but has 1 null.*batch 3 of this stream; "
                                              r"the 2 before it were accepted"):
        raw_put(srv, [good, good, bad, good])
    assert sink.rows == 10


def test_wrong_types_rejected(server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    good = make_batch(3)
    idx = good.schema.get_field_index("Bytes")
    bad = good.set_column(idx, pa.field("Bytes", pa.string()), pa.array(["1", "2", "3"]))
    with pytest.raises(pa.ArrowInvalid, match="column Bytes: got string"):
        raw_put(srv, [bad])
    assert sink.rows == 0


def test_processor_fault_is_a_retryable_transport_error() -> None:
    def broken(batch: pa.RecordBatch, transport: str) -> None:
        raise RuntimeError("disk on fire")

    srv = FlowFlightServer("grpc://127.0.0.1:0", broken)
    try:
        with pytest.raises(TransportError, match="disk on fire") as err:
            transport.open_sender(_url(srv)).send([make_batch(2)])
        assert err.value.retry_after is not None
    finally:
        srv.shutdown()


def test_batches_with_different_optional_columns_share_a_stream(
        server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    minimal = pa.RecordBatch.from_pydict({"TimeFlowStartMs": [BASE_MS], "TimeFlowEndMs": [BASE_MS], "Etype": [2048],
                                          "Proto": [6], "SrcAddr": ["a"], "DstAddr": ["b"], "Bytes": [1],
                                          "Packets": [1]})
    assert transport.open_sender(_url(srv)).send([make_batch(3), minimal]) == 4
    assert sink.rows == 4


def test_empty_batch_skipped_and_counted(server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    before = rejected("empty")
    empty = make_batch(0)
    assert transport.open_sender(_url(srv)).send([empty, make_batch(4)]) == 4
    assert sink.rows == 4
    assert rejected("empty") == before + 1


def test_garbage_bytes_on_the_port_do_not_hurt(server: tuple[FlowFlightServer, Collector]) -> None:
    srv, sink = server
    for payload in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 40, b"\x00" * 9):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(payload)
            s.settimeout(2)
            with contextlib.suppress(TimeoutError):
                s.recv(1024)
    assert transport.open_sender(_url(srv)).send([make_batch(3)]) == 3
    assert sink.rows == 3


def test_unreachable_processor_is_a_retryable_transport_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = transport.FlightSender(f"grpc://127.0.0.1:{port}", timeout=3)
    with pytest.raises(TransportError) as err:
        sender.send([make_batch(1)])
    assert err.value.retry_after is not None
