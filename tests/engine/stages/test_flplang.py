"""The processor query language (FLP keep_entry_query): parsing, semantics on hand-built rows, errors."""

from __future__ import annotations

import re

import polars as pl
import pytest

from flowlake.engine.errors import FilterError
from flowlake.engine.query import flpexpr, flplang
from tests.conftest import make_batch

# Five flows with known values: index i has Bytes 100+i, SrcAddr 10.0.0.i.
FLOWS = pl.from_arrow(make_batch(
    5,
    SrcK8S_Namespace=["shop", "openshift-dns", None, "shop", "payments"],
    DstK8S_Namespace=["payments", "shop", "shop", None, "openshift-ingress"],
    Proto=[6, 17, 6, 1, 6],
    FlowDirection=[0, 1, 2, 1, None],
    TimeFlowRttNs=[1_000_000, None, 5_000_000, None, 20_000_000],
    Interfaces=[["eth0", "genev_sys_6081"], ["eth0"], None, ["br-ex"], []],
    DnsFlagsResponseCode=[None, "NXDomain", None, None, "NoError"],
))


def rows(query: str) -> list[int]:
    """Indexes (Bytes - 100) of the flows a query keeps."""
    assert isinstance(FLOWS, pl.DataFrame)
    return [b - 100 for b in FLOWS.filter(flpexpr.compile_query(query))["Bytes"].to_list()]


@pytest.mark.parametrize(("query", "expected"), [
    pytest.param('SrcK8S_Namespace="shop"', [0, 3], id="equal"),
    pytest.param('SrcK8S_Namespace!="shop"', [1, 2, 4], id="not-equal-counts-absent"),
    pytest.param('SrcK8S_Namespace=~"^open"', [1], id="regex"),
    pytest.param('SrcK8S_Namespace=~"shift"', [1], id="regex-is-a-search"),
    pytest.param('DstK8S_Namespace!~"^openshift"', [0, 1, 2, 3], id="not-regex-counts-absent"),
    pytest.param("Proto=6", [0, 2, 4], id="number"),
    pytest.param('Proto="17"', [1], id="number-as-text"),
    pytest.param("Bytes>102", [3, 4], id="gt"),
    pytest.param("Bytes>=102", [2, 3, 4], id="ge"),
    pytest.param("Bytes<101", [0], id="lt"),
    pytest.param("Bytes<=101", [0, 1], id="le"),
    pytest.param("TimeFlowRttNs > 2000000", [2, 4], id="gt-skips-absent"),
    pytest.param("with(TimeFlowRttNs)", [0, 2, 4], id="with"),
    pytest.param("without(DnsFlagsResponseCode)", [0, 2, 3], id="without"),
    pytest.param("FlowDirection=1", [1, 3], id="uint8"),
    pytest.param("FlowDirection!=1", [0, 2, 4], id="uint8-not-equal-counts-absent"),
    pytest.param('Interfaces="eth0"', [0, 1], id="list-any-element"),
    pytest.param('Interfaces=~"^genev"', [0], id="list-regex"),
    pytest.param('Interfaces!="eth0"', [2, 3, 4], id="list-none"),
    pytest.param('SrcK8S_Namespace="shop" or Proto=17 and Bytes>200', [0, 3], id="and-binds-tighter"),
    pytest.param('(SrcK8S_Namespace="shop" or Proto=17) and Bytes<103', [0, 1], id="parentheses"),
    pytest.param('SrcK8S_Namespace="shop" AND DstK8S_Namespace="payments" Or Proto=1', [0, 3],
                 id="keywords-any-case"),
    pytest.param('with(SrcK8S_Namespace) and (without(DstK8S_Namespace) or DstK8S_Namespace=~"^open")', [3, 4],
                 id="nested"),
    pytest.param("   ", [0, 1, 2, 3, 4], id="empty-keeps-all"),
    pytest.param("SrcAddr='10.0.0.2'", [2], id="single-quotes"),
    pytest.param(r'DnsFlagsResponseCode=~"NX\\w+"', [1], id="escaped-backslash"),
])
def test_semantics(query: str, expected: list[int]) -> None:
    assert rows(query) == expected


def test_reference_example_from_flp_docs() -> None:
    # FLP docs/filtering.md and pkg/dsl/eval_test.go TestAndOrEqual, with our field names
    q = ('(SrcK8S_Namespace="netobserv" OR (SrcK8S_Namespace="ingress" AND DstK8S_Namespace="netobserv")) '
         'AND SrcK8S_Type!="Service"')
    frame = pl.DataFrame({"SrcK8S_Namespace": ["plop", "ingress", "ingress"],
                          "DstK8S_Namespace": ["netobserv"] * 3, "SrcK8S_Type": ["Pod", "Pod", "Service"]})
    assert frame.select(flpexpr.compile_query(q)).to_series().to_list() == [False, True, False]


def test_parse_tree_keeps_positions() -> None:
    tree = flplang.parse('a="x" and (b>2 or without(c))')
    assert tree == flplang.BoolOp("and", (
        flplang.Compare("a", "=", "x", 0, 2),
        flplang.BoolOp("or", (flplang.Compare("b", ">", 2, 11, 13), flplang.Presence("c", False, 26))),
    ))
    assert flplang.parse('d="say \\"hi\\""') == flplang.Compare("d", "=", 'say "hi"', 0, 2)
    assert flplang.parse("e >= -1.5") == flplang.Compare("e", ">=", -1.5, 0, 5)


@pytest.mark.parametrize(("query", "position", "message"), [
    pytest.param('SrcK8S_namespace="a"', 0, "did you mean SrcK8S_Namespace", id="unknown-field"),
    pytest.param('Proto="6" and Foo=1', 14, "unknown field 'Foo'", id="unknown-field-later"),
    pytest.param("Bytes", 5, "expected an operator", id="no-operator"),
    pytest.param("Bytes ~ 5", 6, "expected an operator", id="bad-operator"),
    pytest.param("Bytes=", 6, "expected a quoted string or a number", id="no-value"),
    pytest.param("SrcK8S_Namespace=shop", 17, 'SrcK8S_Namespace="value"', id="unquoted-text"),
    pytest.param('SrcK8S_Namespace="shop', 17, "unterminated string", id="unterminated"),
    pytest.param("(Proto=6", 8, "to close the '(' at position 0", id="unclosed"),
    pytest.param("Proto=6)", 7, "no matching '('", id="extra-close"),
    pytest.param("Proto=6 Bytes>1", 8, "join conditions with 'and' or 'or'", id="missing-and"),
    pytest.param("Proto=6 and", 11, "remove the trailing", id="trailing-and"),
    pytest.param('Bytes>"big"', 6, "compares numbers", id="order-needs-number"),
    pytest.param("SrcK8S_Namespace>1", 0, "is not numeric", id="order-needs-numeric-field"),
    pytest.param('SrcK8S_Namespace=~"("', 18, "bad regular expression", id="bad-regex"),
    pytest.param('NetworkEvents="x"', 0, "use with(NetworkEvents)", id="structured"),
    pytest.param("with(Nope)", 5, "unknown field 'Nope'", id="with-unknown"),
])
def test_errors_point_at_the_problem(query: str, position: int, message: str) -> None:
    with pytest.raises(FilterError, match=re.escape(message)) as err:
        flpexpr.compile_query(query)
    assert err.value.position == position
