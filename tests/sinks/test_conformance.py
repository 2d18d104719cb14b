"""Every registered sink against the same promises: round trip, its claimed capabilities, close, failures, counters."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from flowlake.engine import selfmetrics
from flowlake.engine.errors import SinkError
from tests.sinks.harnesses import Harness, sort_rows


def counter(name: str, sink: str) -> float:
    return selfmetrics.REGISTRY.get_sample_value(name, {"sink": sink}) or 0.0


def same(got: pl.DataFrame, want: pl.DataFrame, *, ordered: bool = False) -> None:
    if not ordered:
        got, want = sort_rows(got), sort_rows(want)
    assert_frame_equal(got, want, check_dtypes=False)


def test_schema_round_trip(harness: Harness, flows: pl.DataFrame) -> None:
    sink = harness.make()
    for part in flows.iter_slices(500):
        sink.write(part)
    sink.flush()
    same(harness.read(), harness.expected(flows))
    sink.close()


def test_claimed_order_is_kept(harness: Harness, flows: pl.DataFrame) -> None:
    sink = harness.make()
    if not sink.capabilities.ordered:
        sink.close()
        pytest.skip(f"{sink.name} does not claim to keep write order")
    shuffled = flows.sample(fraction=1.0, shuffle=True, seed=3)
    for part in shuffled.iter_slices(300):
        sink.write(part)
    sink.flush()
    same(harness.read(), harness.expected(shuffled), ordered=True)


def test_readers_see_whole_batches_or_nothing(harness: Harness, flows: pl.DataFrame) -> None:
    sink = harness.make()
    if not sink.capabilities.atomic_publish:
        sink.close()
        pytest.skip(f"{sink.name} does not claim atomic publication")
    first, second = flows.head(1000), flows.tail(1004)
    sink.write(first)
    sink.flush()
    sink.write(second)
    seen = harness.read()  # before the second flush: the first batch, with or without all of the second
    assert seen.height in (harness.expected(first).height, harness.expected(flows).height)
    sink.flush()
    same(harness.read(), harness.expected(flows))
    sink.close()


def test_close_flushes(harness: Harness, flows: pl.DataFrame) -> None:
    sink = harness.make()
    sink.write(flows)
    sink.close()
    same(harness.read(), harness.expected(flows))


def test_written_rows_are_counted(harness: Harness, flows: pl.DataFrame) -> None:
    sink = harness.make()
    before = counter("flowlake_sink_rows_total", sink.name)
    sink.write(flows)
    sink.flush()
    assert counter("flowlake_sink_rows_total", sink.name) == before + flows.height
    sink.close()


def test_destination_down(harness: Harness, flows: pl.DataFrame) -> None:
    """Durable sinks (the lake, Kafka) keep the rows and publish them once the destination is back; others
    retry, then drop and count. Either way SinkError names the problem and the retried rows are counted."""
    sink = harness.make_down()
    name = sink.name
    retries, dropped, errors = (counter(f"flowlake_sink_{m}_total", name)
                                for m in ("retries", "dropped_rows", "errors"))
    sink.write(flows)
    with pytest.raises(SinkError, match=name):
        sink.flush()
    assert counter("flowlake_sink_errors_total", name) > errors
    assert counter("flowlake_sink_retries_total", name) >= retries + flows.height
    if sink.capabilities.durable:
        assert counter("flowlake_sink_dropped_rows_total", name) == dropped
        harness.bring_up()
        assert sink.flush() == flows.height
        same(harness.read(), harness.expected(flows))
    else:
        assert counter("flowlake_sink_dropped_rows_total", name) == dropped + flows.height
    sink.close()
