"""SQL over Flight sees only the `flows` table: escape attempts fail, bad SQL says where and why, counted."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

import flowlake.engine as fl
from flowlake.api import flight_sql
from flowlake.api.flight_ticket import TicketError
from flowlake.engine import selfmetrics
from flowlake.engine.client import QueryError


def bad_sql_count() -> float:
    value = selfmetrics.REGISTRY.get_sample_value("flowlake_flight_bad_requests_total",
                                                  {"kind": "sql", "parameter": "sql"})
    return value or 0.0


ESCAPES = {
    "read_parquet": "SELECT * FROM read_parquet('{lake}/**/*.parquet')",
    "upper-case": "SELECT * FROM READ_PARQUET('{lake}/**/*.parquet')",
    "quoted-name": "SELECT * FROM \"read_parquet\"('{lake}/**/*.parquet')",
    "comment-between": "SELECT * FROM read_parquet/**/('{lake}/**/*.parquet')",
    "union": "SELECT SrcAddr FROM flows UNION ALL SELECT SrcAddr FROM read_parquet('{lake}/**/*.parquet')",
    "subquery": "SELECT count(*) FROM (SELECT * FROM read_csv('/etc/passwd'))",
    "cte": "WITH x AS (SELECT * FROM read_ipc('/etc/hosts')) SELECT * FROM x",
    "join": "SELECT * FROM flows f JOIN read_json('/etc/hosts') j ON true",
    "second-statement": "SELECT 1; SELECT * FROM read_parquet('{lake}/**/*.parquet')",
    "create-table": "CREATE TABLE t AS SELECT * FROM flows",
    "drop-table": "DROP TABLE flows",
    "show-tables": "SHOW TABLES",
    "other-table": "SELECT * FROM lake",
    # literal forms the lexical check does not model: refused, so nothing can hide inside them
    "dollar-quote": "SELECT $$'$$ AS a, x.* FROM read_parquet('{lake}/**/*.parquet') AS x -- '",
    "dollar-tag": "SELECT $t$'$t$ AS a, x.* FROM read_parquet('{lake}/**/*.parquet') AS x -- '",
    "escape-string": "SELECT E'\\'' AS a, x.* FROM read_parquet('{lake}/**/*.parquet') AS x -- '",
}


@pytest.mark.parametrize("sql", ESCAPES.values(), ids=ESCAPES.keys())
def test_escape_attempts_fail(url: str, world: dict[str, Any], sql: str) -> None:
    with pytest.raises(QueryError) as err:
        fl.connect(url).sql(sql.format(lake=world["lake"]))
    assert err.value.parameter == "sql"


def test_a_string_that_mentions_read_parquet_is_fine(url: str) -> None:
    got = fl.connect(url).sql("SELECT 'read_parquet(x)' AS s, count(*) AS n FROM flows")
    assert got["s"][0] == "read_parquet(x)"


def test_the_plan_check_refuses_files_even_past_the_lexical_check(world: dict[str, Any],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # The backstop: with the lexical check disabled, the plan may still scan only what `flows` scans.
    from flowlake.engine.store import lake

    monkeypatch.setattr(flight_sql, "check", lambda sql: None)
    flows = lake.scan(world["lake"]).filter(pl.col("SrcK8S_Namespace") == "shop")
    assert flight_sql.execute(flows, "SELECT count(*) FROM flows").collect().item() > 0
    with pytest.raises(TicketError, match="outside the `flows` table"):
        flight_sql.execute(flows, f"SELECT * FROM read_parquet('{world['lake']}/**/*.parquet')")


@pytest.mark.parametrize(("sql", "position", "reason"), [
    ("SELECT SrcAddr FROM flows WHERE", 31, "Expected: an expression"),
    ("SELECT NoSuchColumn FROM flows", 7, "NoSuchColumn"),
    ("SELEC SrcAddr FROM flows", 0, "only SELECT"),
    ("SELECT frobnicate(Bytes) FROM flows", 7, "frobnicate"),
    ("SELECT SrcAddr,\n  sum(Bytes) FROM flows GROUP BY\n", 48, "Expected"),
], ids=["eof", "column", "keyword", "function", "multiline"])
def test_bad_sql_gives_position_and_reason(url: str, sql: str, position: int, reason: str) -> None:
    before = bad_sql_count()
    with pytest.raises(QueryError) as err:
        fl.connect(url).sql(sql)
    assert err.value.position == position
    assert reason in str(err.value)
    assert "Resolved plan" not in str(err.value)  # no plan dump (it would name lake files)
    assert bad_sql_count() == before + 1


def test_error_found_while_running_is_a_bad_request_too(url: str) -> None:
    with pytest.raises(QueryError, match="bad SQL") as err:
        fl.connect(url).sql("SELECT SrcAddr FROM flows WHERE Bytes = 'many'")
    assert err.value.parameter == "sql"


def test_huge_numbers_are_bad_requests_not_tracebacks(url: str) -> None:
    from pyarrow import flight

    client = flight.connect(url)
    for command in ('{"kind":"flows","limit":1e30}', '{"kind":"flows","end_time":1e300}',
                    '{"kind":"metrics","step":1e300}'):
        with pytest.raises(flight.FlightServerError) as err:
            client.get_flight_info(flight.FlightDescriptor.for_command(command))
        assert "bad request" in str(err.value) and "Traceback" not in str(err.value), command


def test_unknown_ticket_keys_do_not_become_metric_labels(url: str) -> None:
    from pyarrow import flight

    with pytest.raises(flight.FlightServerError, match="unknown key"):
        next(iter(flight.connect(url).do_get(flight.Ticket(b'{"kind":"flows","made_up_label_xyz":1}'))))
    labels = {s.labels.get("parameter") for m in selfmetrics.REGISTRY.collect() for s in m.samples
              if s.name == "flowlake_flight_bad_requests_total"}
    assert "made_up_label_xyz" not in labels and "unknown_key" in labels
