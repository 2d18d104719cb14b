"""Decode stage: DnsFlagsResponseCode from the RCODE bits of DnsFlags."""

from __future__ import annotations

import polars as pl

from flowlake.engine.stages.decode import RCODE_NAMES, DecodeStage
from flowlake.engine.synth import SynthFlows
from tests.conftest import make_batch


def test_rcode_names_from_the_low_four_bits() -> None:
    flags = [0x8180, 0x8183, 0x8182, 0x8185, 0x0100, 0x818B, 0x818F, None, 0x8183]
    given = [None] * 8 + ["ServFail"]  # a name the agent sent wins over the bits
    df = pl.from_arrow(make_batch(9, DnsFlags=flags, DnsFlagsResponseCode=given))
    assert isinstance(df, pl.DataFrame)
    out = DecodeStage().process(df)
    assert out["DnsFlagsResponseCode"].to_list() == [
        "NoError", "NXDomain", "ServFail", "Refused", "NoError", "DSOTYPENI", "15", None, "ServFail"]


def test_names_table() -> None:
    assert RCODE_NAMES[:11] == ("NoError", "FormErr", "ServFail", "NXDomain", "NotImp", "Refused", "YXDomain",
                                "YXRRSet", "NXRRSet", "NotAuth", "NotZone")
    assert len(RCODE_NAMES) == 16


def test_synthetic_dns_codes_round_trip(synth: SynthFlows) -> None:
    df = pl.from_arrow(synth.batch)
    assert isinstance(df, pl.DataFrame)
    truth = df["DnsFlagsResponseCode"]
    out = DecodeStage().process(df.with_columns(pl.lit(None, pl.String).alias("DnsFlagsResponseCode")))
    assert out["DnsFlagsResponseCode"].to_list() == truth.to_list()
    assert {"NoError", "NXDomain", "ServFail"} <= set(truth.drop_nulls().to_list())
