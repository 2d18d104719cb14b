"""Fixtures for the query layer and API tests: a multi-hour lake with a Python model of its rows.

The lake holds 4 hours of flows (one per minute, at :30 s) written through the real `LakeSink`;
hour 1 is written in two flushes, so it has two files. Tests compute expected answers from `ROWS`
(plain Python dicts), independently of Polars.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient

from flowlake.api import create_app
from flowlake.engine.sinks.lake import LakeSink
from flowlake.engine.store import layout
from tests.conftest import BASE_MS, make_batch

HOUR = layout.HOUR_MS
HOURS = 4
PER_HOUR = 60
FILES_PER_HOUR = (1, 2, 1, 1)  # hour 1 is flushed twice: pruning is counted in files, not hours


def _row(h: int, i: int) -> dict[str, Any]:
    """The flow number i (0..59) of hour h; every varying column is a simple function of i."""
    drops = 2 if i % 10 == 0 else None
    return {
        "TimeFlowEndMs": BASE_MS + h * HOUR + i * 60_000 + 30_000,
        "SrcK8S_Namespace": ("frontend", "backend", "kube-system")[i % 3],
        "DstK8S_Namespace": ("backend", "db")[i % 2],
        "PktDropPackets": drops,
        "Packets": 0 if i % 20 == 0 else 1,  # i % 20 == 0: every packet dropped
        "_RecordType": {0: "newConnection", 1: "endConnection", 2: "flowLog"}.get(i % 15),
        "Interfaces": ["eth0"] if i % 2 else ["br-ex", "veth1"],
        "Flags": 18 if i % 4 == 0 else None,
    }


ROWS: list[dict[str, Any]] = [_row(h, i) for h in range(HOURS) for i in range(PER_HOUR)]


def _frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    n = len(rows)
    end = [r["TimeFlowEndMs"] for r in rows]
    cols = {k: [r[k] for r in rows] for k in rows[0] if k != "TimeFlowEndMs"}
    cols["Bytes"] = [100 + (r["TimeFlowEndMs"] - BASE_MS) // 60_000 for r in rows]  # unique per flow
    batch = make_batch(n, start_ms=end[0], step_ms=60_000, TimeFlowStartMs=[e - 500 for e in end],
                       TimeFlowEndMs=end, **cols)
    return pl.from_arrow(batch)  # type: ignore[return-value]


def write_lake(url: str, rows: list[dict[str, Any]], flushes_per_hour: tuple[int, ...]) -> None:
    sink = LakeSink(url)
    for h, parts in enumerate(flushes_per_hour):
        hour_rows = [r for r in rows if (r["TimeFlowEndMs"] - BASE_MS) // HOUR == h]
        size = len(hour_rows) // parts
        for p in range(parts):
            chunk = hour_rows[p * size:(p + 1) * size if p < parts - 1 else None]
            sink.write(_frame(chunk))
            sink.flush()
    sink.close()


@pytest.fixture(scope="session")
def lake_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = str(tmp_path_factory.mktemp("lake") / "lake")
    write_lake(url, ROWS, FILES_PER_HOUR)
    return url


@pytest.fixture(scope="session")
def client(lake_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(lake_url, status_info={"feed": "synthetic"})) as c:
        yield c


@pytest.fixture
def recent_client(tmp_path: Path) -> Iterator[TestClient]:
    """A lake with one flow a minute ago and one two hours ago, for the default time range."""
    now = int(time.time() * 1000)
    url = str(tmp_path / "lake")
    sink = LakeSink(url)
    for age_ms, ns in ((60_000, "recent"), (2 * HOUR, "old")):
        sink.write(pl.from_arrow(make_batch(1, start_ms=now - age_ms,  # type: ignore[arg-type]
                                            SrcK8S_Namespace=[ns])))
    sink.close()
    with TestClient(create_app(url)) as c:
        yield c


@pytest.fixture(scope="session")
def model_lake(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The enriched lake of tests/api/model.py (ROWS with namespaces, owners, hosts, DNS, RTT, drops)."""
    from tests.api import model

    url = str(tmp_path_factory.mktemp("model") / "lake")
    model.write(url)
    return url


@pytest.fixture(scope="session")
def model_client(model_lake: str) -> Iterator[TestClient]:
    with TestClient(create_app(model_lake)) as c:
        yield c
