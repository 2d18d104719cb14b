"""Fuzzing: the filter parser and compiler with hypothesis, every HTTP operation with schemathesis.

- Any string given as `filters` either compiles to an expression that Polars can evaluate on flow rows,
  or raises `FilterError` (`QueryError` through FlowQuery): never anything else.
- Valid filters round-trip: a query built as data, rendered to text and parsed back is the same query.
- schemathesis generates requests from the OpenAPI schema for every operation (30 valid and 30 invalid
  examples each, in-process through ASGI) and checks no answer is a 5xx and every answer conforms to
  the schema (status code, content type, body).
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode, checks

from flowlake.api import create_app
from flowlake.engine.errors import FilterError
from flowlake.engine.query import compile_filters, keys, syntax
from flowlake.engine.query.flows import FlowQuery, QueryError
from tests.conftest import make_batch

FRAME = pl.from_arrow(make_batch(5, SrcK8S_Namespace=["shop", None, "db", "", "kube-system"],
                                 Interfaces=[["eth0"], None, [], ["br0", "eth1"], ["eth0"]],
                                 Flags=[2, 18, None, 0, 1024], DnsLatencyMs=[1, None, 3, 4, 5]))
assert isinstance(FRAME, pl.DataFrame)

# Characters that matter to the grammar, plus ordinary and unusual text.
SPECIAL = "=!~<>,&|\"\\ .:/-_*^$()[]{}?+%"
ANY_TEXT = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8")), max_size=60)
KEYS = st.sampled_from(sorted(keys.ALL_KEYS))
VALUE_HINTS = st.sampled_from(["80", "-1", "1e3", "10.0.0.0/8", "::1", "fe80::/10", "SYN", "tcp", "Ingress",
                               "", "a|b", "(", "[", "^x$", "999999999999999999999", "true", "0x10", "10.0.0.300",
                               "1.5", "*", "ß", "\\d+"])


def _evaluates(text: str) -> None:
    try:
        expr = compile_filters(text)
    except FilterError:
        return
    FRAME.filter(expr)  # must not raise: a bad filter is rejected at compile time, not at query time


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(ANY_TEXT)
def test_any_text_compiles_or_is_a_filter_error(text: str) -> None:
    _evaluates(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(KEYS, st.sampled_from(syntax.OPERATORS), st.lists(st.one_of(VALUE_HINTS, ANY_TEXT), min_size=1, max_size=3),
       st.booleans())
def test_known_keys_with_any_values(key: str, op: str, values: list[str], quote: bool) -> None:
    def render(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' if quote else v

    text = f"{key}{op}{','.join(render(v) for v in values)}"
    _evaluates(text)
    try:
        FlowQuery(filters=text)
    except QueryError as exc:
        assert exc.parameter == "filters"


# -- round trip ----------------------------------------------------------------------------------

UNQUOTED = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=',&|"'), min_size=1, max_size=12) \
    .map(lambda s: s.strip(" ")).filter(lambda s: bool(s) and s[0] not in "=!~<>")
QUOTED = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8")), max_size=12)
VALUE = st.one_of(UNQUOTED.map(lambda s: (s, False)), QUOTED.map(lambda s: (s, True)))
CLAUSE = st.tuples(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_", min_size=1,
                           max_size=10), st.sampled_from(syntax.OPERATORS), st.lists(VALUE, min_size=1, max_size=3))
QUERY = st.lists(st.lists(CLAUSE, min_size=1, max_size=3), min_size=1, max_size=3)


def render(query: list[list[tuple[str, str, list[tuple[str, bool]]]]], spaces: bool) -> str:
    sep = " " if spaces else ""

    def value(text: str, quoted: bool) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' if quoted else text

    return f"{sep}|{sep}".join(
        f"{sep}&{sep}".join(f"{k}{sep}{op}{sep}{','.join(value(*v) for v in vals)}" for k, op, vals in group)
        for group in query)


@settings(max_examples=300, deadline=None, database=None)
@given(QUERY, st.booleans())
def test_valid_filters_round_trip(query: list[list[tuple[str, str, list[tuple[str, bool]]]]], spaces: bool) -> None:
    parsed = syntax.parse(render(query, spaces))
    assert [[(c.key, c.op, [(v.text, v.quoted) for v in c.values]) for c in g] for g in parsed] == query


# -- schemathesis ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_schema(model_lake: str) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(model_lake))


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """(path, method, mode) of every operation; invalid requests only where there is a parameter to break."""
    spec = create_app("unused-lake").openapi()
    return [(path, method, mode) for path, methods in spec["paths"].items() for method, op in methods.items()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            if mode is GenerationMode.POSITIVE or op.get("parameters")]


@pytest.mark.parametrize(("path", "method", "mode"), _operations(),
                         ids=[f"{m.upper()} {p} {g.value}" for p, m, g in _operations()])
def test_every_operation_from_the_openapi_schema(api_schema: Any, path: str, method: str,
                                                 mode: GenerationMode) -> None:
    """Schema-valid requests and requests that break it (wrong types, out of range, unknown enums)."""
    operation = api_schema[path][method]

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=[checks.not_a_server_error, checks.status_code_conformance,
                                       checks.content_type_conformance, checks.response_schema_conformance])

    run()
