"""The processor query language compiled to ONE Polars expression; used by the `filter` stage and `filters:`.

Semantics follow flowlogs-pipeline's `pkg/utils/filters` predicates, with a null column value standing
for FLP's absent map key:
- `F = v`: equality; a number against a numeric field compares numbers, anything else compares the
  field's text form (FLP compares `fmt` string forms), so `Proto = 6` and `Proto = "6"` both work.
- `F =~ re` / `F !~ re`: regex *search* (unanchored, like Go's `MatchString`), Rust regex syntax, on
  the text form of the value.
- `F != v` and `F !~ re` are the negations of `=` / `=~`: a row with F absent (null) matches them.
- `F > n` (`>=`, `<`, `<=`): numeric comparison; F must be numeric and n a number.
- `with(F)` / `without(F)`: F is non-null / null.
- List fields (Interfaces, IfDirections, Udns, TLSTypes) match `=`/`=~` when any element does.
Every positive comparison is false on null, so a query never yields null: rows either match or not.
"""

from __future__ import annotations

import difflib

import polars as pl
import pyarrow as pa

from flowlake.engine import schema
from flowlake.engine.errors import FilterError
from flowlake.engine.query import flplang

_ORDER = {">": pl.Expr.gt, ">=": pl.Expr.ge, "<": pl.Expr.lt, "<=": pl.Expr.le}


def compile_query(text: str) -> pl.Expr:
    """A boolean expression over flow frames (`pl.lit(True)` for an empty query); `FilterError` if bad."""
    node = flplang.parse(text)
    return pl.lit(True) if node is None else _node(node)


def _node(node: flplang.Node) -> pl.Expr:
    if isinstance(node, flplang.BoolOp):
        parts = [_node(n) for n in node.operands]
        # n-ary horizontal ops, not chains of binary &/|: deep chains are slow for Polars' optimizer
        return pl.all_horizontal(parts) if node.op == "and" else pl.any_horizontal(parts)
    field = _field(node.field, node.position)
    if isinstance(node, flplang.Presence):
        return pl.col(field.name).is_not_null() if node.present else pl.col(field.name).is_null()
    return _compare(field, node)


def _field(name: str, position: int) -> schema.Field:
    field = schema.BY_NAME.get(name)
    if field is not None:
        return field
    close = difflib.get_close_matches(name, schema.BY_NAME, n=1) or [
        n for n in schema.BY_NAME if n.lower() == name.lower()]
    hint = f"did you mean {close[0]}? " if close else ""
    raise FilterError(f"unknown field {name!r}: {hint}field names are flow field names (SrcK8S_Namespace, "
                      "DstPort, FlowDirection, ...; see docs/flows-format.md)", position)


def _compare(field: schema.Field, c: flplang.Compare) -> pl.Expr:
    t, col = field.type, pl.col(field.name)
    if pa.types.is_list(t) and not (pa.types.is_string(t.value_type) or pa.types.is_integer(t.value_type)):
        raise FilterError(f"field {field.name} holds structured values and cannot be compared; use "
                          f"with({field.name}) or without({field.name})", c.position)
    if c.op in _ORDER:
        if not isinstance(c.value, int | float):
            raise FilterError(f"{c.op} compares numbers: write a number after {field.name}{c.op}, not "
                              f"{c.value!r}", c.value_position)
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise FilterError(f"field {field.name} is not numeric, so {c.op} cannot apply; use = or =~",
                              c.position)
        return _ORDER[c.op](col, c.value).fill_null(False)
    negate = c.op in ("!=", "!~")
    item = t.value_type if pa.types.is_list(t) else t
    numeric = pa.types.is_integer(item) or pa.types.is_floating(item)
    value = c.value
    if c.op in ("=~", "!~"):
        _check_regex(str(value), c.value_position)

        def test(e: pl.Expr) -> pl.Expr:
            return _text(e).str.contains(str(value))
    else:
        def test(e: pl.Expr) -> pl.Expr:
            if isinstance(value, int | float) and numeric:
                return e == value
            return _text(e) == (value if isinstance(value, str) else _number_text(value))
    positive = col.list.eval(test(pl.element())).list.any() if pa.types.is_list(t) else test(col)
    positive = positive.fill_null(False)
    return ~positive if negate else positive


def _text(e: pl.Expr) -> pl.Expr:
    return e.cast(pl.String)


def _number_text(n: int | float) -> str:
    return str(int(n)) if isinstance(n, float) and n.is_integer() else str(n)


def _check_regex(pattern: str, position: int) -> None:
    try:  # Polars (Rust) regex syntax, not Python's: validate with the engine that will run it
        pl.Series([""], dtype=pl.String).str.contains(pattern)
    except pl.exceptions.ComputeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()]
        detail = next((ln for ln in lines if ln.startswith("error:")), lines[0] if lines else "")
        raise FilterError(f"bad regular expression {pattern!r} ({detail})", position) from exc
