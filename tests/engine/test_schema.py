"""The flow schema contract: validate() accepts, converts and rejects as documented."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from flowlake.engine import schema
from flowlake.engine.errors import SchemaError
from tests.conftest import BASE_MS, make_batch

REPO = Path(__file__).resolve().parents[2]


def test_schema_has_netobserv_fields() -> None:
    must = {"TimeFlowStartMs", "TimeFlowEndMs", "TimeReceived", "AgentIP", "Etype", "Proto", "SrcAddr",
            "DstAddr", "SrcPort", "DstPort", "SrcMac", "DstMac", "Bytes", "Packets", "Flags", "Dscp",
            "IcmpType", "IcmpCode", "Sampling", "Interfaces", "IfDirections", "FlowDirection", "DnsId",
            "DnsFlags", "DnsFlagsResponseCode", "DnsLatencyMs", "DnsErrno", "DnsName", "TimeFlowRttNs",
            "PktDropBytes", "PktDropPackets", "PktDropLatestState", "PktDropLatestDropCause",
            "PktDropLatestFlags", "K8S_FlowLayer", "K8S_ClusterName", "SrcSubnetLabel", "DstSubnetLabel",
            "_RecordType", "_HashId"}
    for side in ("Src", "Dst"):
        must |= {f"{side}K8S_{x}" for x in
                 ("Name", "Type", "Namespace", "OwnerName", "OwnerType", "HostIP", "HostName", "Zone")}
    assert must <= set(schema.SCHEMA.names)
    assert len(set(schema.SCHEMA.names)) == len(schema.SCHEMA.names)


def test_default_loki_labels_are_the_reference_eight() -> None:
    assert set(schema.LOKI_LABELS) == {
        "SrcK8S_Namespace", "SrcK8S_OwnerName", "SrcK8S_Type", "DstK8S_Namespace", "DstK8S_OwnerName",
        "DstK8S_Type", "K8S_FlowLayer", "FlowDirection"}


def test_valid_canonical_batch_is_returned_unchanged() -> None:
    batch = make_batch(5)
    assert schema.validate(batch) is batch


def test_minimal_batch_is_completed_and_converted() -> None:
    batch = pa.RecordBatch.from_pydict({
        "TimeFlowStartMs": [BASE_MS, BASE_MS], "TimeFlowEndMs": [BASE_MS + 1, BASE_MS + 2],
        "Etype": [2048, 2048], "Proto": [17, 6],
        "SrcAddr": ["10.0.0.1", "10.0.0.2"], "DstAddr": pa.array(["a", "b"], pa.large_string()),
        "Bytes": [10, 20], "Packets": pa.array([1, 2], pa.int32()),
        "SrcK8S_Namespace": pa.array(["x", "y"]).dictionary_encode(),
    })
    out = schema.validate(batch)
    assert out.schema.equals(schema.SCHEMA, check_metadata=False)
    assert out.column("Proto").to_pylist() == [17, 6]
    assert out.column("SrcK8S_Namespace").to_pylist() == ["x", "y"]
    assert out.column("DnsName").null_count == 2


def test_polars_round_trip_validates() -> None:
    frame = pl.from_arrow(make_batch(3))
    assert isinstance(frame, pl.DataFrame)
    out = schema.validate(frame.to_arrow())
    assert out.schema.equals(schema.SCHEMA, check_metadata=False)
    assert out.column("Bytes").to_pylist() == [100, 101, 102]


def _required_only(**over: object) -> dict[str, object]:
    data: dict[str, object] = {"TimeFlowStartMs": [BASE_MS], "TimeFlowEndMs": [BASE_MS + 1000],
                               "Etype": [2048], "Proto": [6], "SrcAddr": ["a"], "DstAddr": ["b"], "Bytes": [1],
                               "Packets": [1]}
    data.update(over)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize(("columns", "expected"), [
    pytest.param(_required_only(Bytes=None), ["column Bytes: required but missing"], id="missing-required"),
    pytest.param(_required_only(SrcPort=["http"]), ["column SrcPort: got string, expected uint16"],
                 id="string-for-int"),
    pytest.param(_required_only(Proto=[300]), ["column Proto: cannot convert int64 to uint8"],
                 id="out-of-range"),
    pytest.param(_required_only(SrcAdr=["x"]), ["column SrcAdr: not in the flow schema"], id="unknown"),
    pytest.param(_required_only(Bytes=[None]), ["column Bytes: required but has 1 null values"],
                 id="null-required"),
    pytest.param(_required_only(TimeFlowEndMs=[1_764_000_000_000_000]),
                 ["column TimeFlowEndMs: values from 1764000000000000 to 1764000000000000 are outside"],
                 id="microseconds"),
    pytest.param(_required_only(SrcAddr=[5], DstPort=[-1]),
                 ["column SrcAddr: got int64, expected string", "column DstPort: cannot convert"],
                 id="every-column-named"),
])
def test_bad_batches_name_each_offending_column(columns: dict[str, object], expected: list[str]) -> None:
    with pytest.raises(SchemaError) as err:
        schema.validate(pa.RecordBatch.from_pydict(columns))
    assert len(err.value.problems) == len(expected)
    for want in expected:
        assert any(p.startswith(want) for p in err.value.problems), (want, err.value.problems)


def test_flows_format_doc_is_fresh() -> None:
    doc = (REPO / "docs" / "flows-format.md").read_text()
    assert doc == schema.render_markdown(), "docs/flows-format.md is stale: run `flowlake docs --write`"
    for f in schema.FIELDS:
        assert f"| `{f.name}` |" in doc
