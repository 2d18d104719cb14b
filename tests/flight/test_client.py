"""The client's own behaviour: open_lake prunes hour partitions, errors name the fix, the engine stays light."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import flowlake.engine as fl
from flowlake.engine.client import ClientError
from tests.flight.conftest import START_MS

HOUR = 3_600_000


def test_open_lake_reads_the_range(world: dict[str, Any]) -> None:
    start, end = START_MS + HOUR, START_MS + 2 * HOUR
    got = fl.open_lake(world["lake"], start=start / 1000, end=end / 1000).select(pl.len()).collect().item()
    ends = world["synth"].batch.column("TimeFlowEndMs").to_numpy()
    assert got == int(((ends >= start) & (ends < end)).sum())
    iso = fl.open_lake(world["lake"], start="2026-11-25T07:00:00Z", end="2026-11-25T08:00:00").select(pl.len())
    assert iso.collect().item() == got  # an ISO time without a zone is UTC


def test_open_lake_never_opens_pruned_partitions(world: dict[str, Any], tmp_path: Path) -> None:
    # A corrupt file in the first hour: a query over the later hours must not touch it.
    lake = tmp_path / "lake"
    shutil.copytree(world["lake"], lake)
    first_hour = sorted(lake.glob("date=*/hour=*"))[0]
    (first_hour / "part-zzzz-corrupt.parquet").write_bytes(b"not parquet at all")
    later = fl.open_lake(str(lake), start=(START_MS + HOUR) / 1000)
    assert later.select(pl.len()).collect().item() > 0
    with pytest.raises(pl.exceptions.ComputeError):
        fl.open_lake(str(lake)).select(pl.len()).collect()


def test_wrong_url_names_it_and_the_fix() -> None:
    with pytest.raises(ClientError) as err:
        fl.connect("grpc://127.0.0.1:9").flows(limit=1)
    assert "grpc://127.0.0.1:9" in str(err.value) and "flowlake api --flight-port" in str(err.value)
    with pytest.raises(ClientError, match="grpc://HOST:PORT"):
        fl.connect("http://127.0.0.1:8080")


def test_importing_the_engine_does_not_load_flight() -> None:
    code = "import sys, flowlake.engine as fl; assert 'pyarrow.flight' not in sys.modules; fl.connect; " \
           "assert 'pyarrow.flight' not in sys.modules; fl.connect('grpc://127.0.0.1:1'); " \
           "assert 'pyarrow.flight' in sys.modules"
    subprocess.run([sys.executable, "-P", "-c", code], check=True)
