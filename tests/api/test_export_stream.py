"""Large exports stream: a lake several times the export batch size, served by uvicorn on loopback.

Checks the answer is sent with chunked transfer encoding (no Content-Length: nothing waits for the end),
that every row arrives in every format, and that the export iterator never holds much more than one
few batches (Parquet decodes whole row groups; the lake here writes 16k-row groups): Arrow's allocator
peak while iterating (60-140 MB here, varying with thread timing) stays well under the whole answer's
450 MB, whatever the number of rows.
"""

from __future__ import annotations

import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import uvicorn

from flowlake.api import create_app
from flowlake.engine.query.export import BATCH_ROWS, iter_export
from flowlake.engine.query.flows import FlowQuery
from flowlake.engine.sinks.lake import LakeSink
from tests.conftest import BASE_MS, make_batch

ROWS = 8 * BATCH_ROWS + 123  # 33 row groups of ROW_GROUP rows
NAMESPACES = ("shop", "db", "web")
ROW_GROUP = 16_384


@pytest.fixture(scope="module")
def big_lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(Path(tmp_path_factory.mktemp("big")) / "lake")
    sink = LakeSink(url, row_group_rows=ROW_GROUP)
    step = 3_600_000 // ROWS  # one hour of flows
    ns = [NAMESPACES[i % 3] for i in range(ROWS)]
    sink.write(pl.from_arrow(make_batch(ROWS, step_ms=step, SrcK8S_Namespace=ns)))  # type: ignore[arg-type]
    sink.close()
    return url


@pytest.fixture(scope="module")
def server(big_lake: str) -> Iterator[tuple[str, int]]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(big_lake), log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield "127.0.0.1", port
    srv.should_exit = True
    thread.join(10)
    sock.close()


def _get(server: tuple[str, int], query: str) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection(*server, timeout=60)
    conn.request("GET", f"/api/export?startTime={BASE_MS // 1000}&endTime={BASE_MS // 1000 + 3600}&{query}")
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp, body


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "parquet", "arrow"])
def test_large_export_is_chunked_and_complete(server: tuple[str, int], fmt: str) -> None:
    resp, body = _get(server, f"format={fmt}&columns=TimeFlowEndMs,SrcK8S_Namespace,Bytes")
    assert resp.status == 200
    assert resp.getheader("Transfer-Encoding") == "chunked" and resp.getheader("Content-Length") is None
    if fmt == "csv":
        frame = pl.read_csv(io.BytesIO(body))
    elif fmt == "ndjson":
        frame = pl.read_ndjson(io.BytesIO(body))
    elif fmt == "parquet":
        table = pq.read_table(io.BytesIO(body))
        assert table.num_rows == ROWS and pq.ParquetFile(io.BytesIO(body)).num_row_groups >= ROWS // BATCH_ROWS
        frame = pl.from_arrow(table)  # type: ignore[assignment]
    else:
        reader = pa.ipc.open_stream(body)
        batches = list(reader)
        assert len(batches) >= 5 and max(b.num_rows for b in batches) <= BATCH_ROWS
        frame = pl.from_arrow(pa.Table.from_batches(batches))  # type: ignore[assignment]
    assert frame.height == ROWS
    assert frame["Bytes"].sort().to_list() == list(range(100, 100 + ROWS))  # make_batch: Bytes = 100 + i
    assert frame["SrcK8S_Namespace"].value_counts().sort("SrcK8S_Namespace")["count"].to_list() == [
        len(range(i, ROWS, 3)) for i in (1, 0, 2)]  # db, shop, web


def test_filtered_and_limited_export(server: tuple[str, int]) -> None:
    _, body = _get(server, "format=csv&columns=SrcK8S_Namespace,Bytes&filters=src_namespace%3D%22db%22")
    frame = pl.read_csv(io.BytesIO(body))
    assert frame.height == len(range(1, ROWS, 3)) and set(frame["SrcK8S_Namespace"]) == {"db"}
    _, body = _get(server, f"format=ndjson&columns=Bytes&limit={BATCH_ROWS + 7}")
    assert body.count(b"\n") == BATCH_ROWS + 7


def test_export_iterator_holds_about_one_batch(big_lake: str) -> None:
    whole = pq.ParquetDataset(big_lake).read()
    whole_bytes = whole.nbytes
    del whole
    q = FlowQuery(start_ms=BASE_MS, end_ms=BASE_MS + 3_600_000)
    base = pa.total_allocated_bytes()
    peak, rows, batches = 0, 0, 0
    for batch in iter_export(big_lake, q, None, batch_rows=ROW_GROUP):
        rows += batch.num_rows
        batches += 1
        peak = max(peak, pa.total_allocated_bytes() - base)
        del batch
    assert rows == ROWS and batches >= 16
    assert peak < whole_bytes / 2, (peak, whole_bytes)  # holding the answer would take all of whole_bytes
