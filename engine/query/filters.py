"""Console filter strings compiled to one Polars expression; called by `engine.query.flows`.

Semantics (NetObserv console, `reference/netobserv.md` §5.2, plus marked extensions):
- `k=v`: a quoted value is an exact match; an unquoted value on a text field is a case-sensitive
  substring match, on a numeric field an exact number; `k=""` matches empty or missing values.
- `k!=v`, `k!~re`: rows where no value matches (missing values count as not matching).
- `k~re`: regex search (Rust regex syntax); quote the pattern to use `|`, `&` or `,` in it.
- `k>=n` (and the extensions `<=`, `>`, `<`): numeric comparison.
- Address fields take a CIDR (`10.128.0.0/14`); an unquoted full address matches that address in any
  spelling. List fields (Interfaces, ...) match when any element matches. `tcp_flags` takes flag names
  (`SYN`; unquoted = every flag name containing it, so SYN also finds SYN_ACK) or a number (all of
  its bits set). `protocol` and `node_direction` accept names (TCP, Ingress) as well as numbers.
- Common keys (`namespace`, `port`, `address`, ...) match the source OR the destination; negated,
  neither side.
"""

from __future__ import annotations

import math

import polars as pl

from flowlake.engine.errors import FilterError
from flowlake.engine.query import flags, ipmatch, keys, syntax
from flowlake.engine.query.keys import Kind

NEGATED = {"!=": "=", "!~": "~"}
COMPARE = {">=", "<=", ">", "<"}

# Names accepted for numeric fields, matched case-insensitively (the console UI shows these names).
NAMED_NUMBERS: dict[str, dict[str, int]] = {
    "Proto": {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58, "sctp": 132},
    "FlowDirection": {"ingress": 0, "egress": 1, "inner": 2},
}


def compile_filters(text: str) -> pl.Expr:
    """One boolean expression for a filter string (`pl.lit(True)` when empty); `FilterError` if bad."""
    groups = syntax.parse(text)
    if not groups:
        return pl.lit(True)
    return _any([_all([_clause(c) for c in group]) for group in groups])


def _any(exprs: list[pl.Expr]) -> pl.Expr:
    # Flat n-ary OR/AND: a chain of thousands of binary `|` makes Polars' optimizer take minutes.
    return exprs[0] if len(exprs) == 1 else pl.any_horizontal(exprs)


def _all(exprs: list[pl.Expr]) -> pl.Expr:
    return exprs[0] if len(exprs) == 1 else pl.all_horizontal(exprs)


def _clause(c: syntax.Clause) -> pl.Expr:
    fields = keys.resolve(c.key, c.position)
    op = NEGATED.get(c.op, c.op)
    matches = []
    for field in fields:
        kind = keys.KINDS[field]
        if kind is Kind.UNSUPPORTED:
            raise FilterError(f"key {c.key!r} (field {field}) cannot be filtered on yet; filter on another "
                              "field", c.position)
        exact: list[str | int] = []  # plain equality values become one `is_in` (statistics prune numbers, SrcAddr)
        for v in c.values:
            literal = _exact_literal(field, kind, op, c.key, v)
            if literal is not None:
                exact.append(literal)
            else:
                matches.append(_value(field, kind, op, c.key, v).fill_null(False))
        if exact:
            matches.append(pl.col(field).is_in(exact).fill_null(False))
    positive = _any(matches)
    return ~positive if c.op in NEGATED else positive


def _exact_literal(field: str, kind: Kind, op: str, key: str, v: syntax.Value) -> str | int | None:
    """The value to compare with plain equality, or None when the match needs its own expression."""
    if op != "=" or (v.quoted and v.text == "") or field == "Flags":
        return None
    if kind is Kind.TEXT and v.quoted:
        return v.text
    if kind is Kind.INTEGER:
        n = _number(field, key, v)
        return n if isinstance(n, int) else None
    return None


def _is_empty(col: pl.Expr, kind: Kind) -> pl.Expr:
    if kind is Kind.TEXT:
        return col.is_null() | (col == "")
    if kind in (Kind.TEXT_LIST, Kind.INTEGER_LIST):
        return col.is_null() | (col.list.len() == 0)
    return col.is_null()


def _value(field: str, kind: Kind, op: str, key: str, v: syntax.Value) -> pl.Expr:
    col = pl.col(field)
    if v.quoted and v.text == "":
        if op in COMPARE:
            raise FilterError(f"key {key!r}: {op} needs a number, not an empty value", v.position)
        return _is_empty(col, kind)
    if op == "~":
        return _regex(field, kind, key, v)
    if op in COMPARE:
        if kind not in (Kind.INTEGER, Kind.INTEGER_LIST):
            raise FilterError(f"key {key!r} (field {field}) holds {kind.value}: {op} compares numbers; "
                              "use = or ~ instead", v.position)
        n = _number(field, key, v)
        cmp = {">=": pl.Expr.ge, "<=": pl.Expr.le, ">": pl.Expr.gt, "<": pl.Expr.lt}[op]
        if kind is Kind.INTEGER_LIST:
            return col.list.eval(cmp(pl.element(), n)).list.any()
        return cmp(col, n)
    return _equals(field, kind, key, v)


def _equals(field: str, kind: Kind, key: str, v: syntax.Value) -> pl.Expr:
    col = pl.col(field)
    if kind is Kind.TEXT:
        if field in keys.IP_FIELDS and not v.quoted:
            if "/" in v.text:
                net = ipmatch.parse_network(v.text)
                if net is None:
                    raise FilterError(f"key {key!r}: {v.text!r} is not a valid CIDR; write e.g. "
                                      "10.128.0.0/14 or fd00::/8", v.position)
                return ipmatch.in_network(col, net)
            net = ipmatch.parse_network(v.text)
            if net is not None:  # a full address: compare as an address, like NetObserv's ip() filter
                return ipmatch.in_network(col, net)
        return col == v.text if v.quoted else col.str.contains(v.text, literal=True)
    if kind is Kind.TEXT_LIST:
        if v.quoted:
            return col.list.eval(pl.element() == v.text).list.any()
        return col.list.eval(pl.element().str.contains(v.text, literal=True)).list.any()
    if kind is Kind.BOOLEAN:
        truth = {"true": True, "1": True, "false": False, "0": False}.get(v.text.lower())
        if truth is None:
            raise FilterError(f"key {key!r} (field {field}) is true/false, not {v.text!r}", v.position)
        return col == truth
    if field == "Flags":
        return _flags(col, key, v)
    n = _number(field, key, v)
    if kind is Kind.INTEGER_LIST:
        return col.list.eval(pl.element() == n).list.any()
    return col == n


def _flags(col: pl.Expr, key: str, v: syntax.Value) -> pl.Expr:
    if v.text.isdigit():  # a numeric mask: every one of its bits is set
        mask = int(v.text)
        return (col & mask) == mask
    name = v.text.upper()
    names = [f for f in flags.TCP_FLAGS if (f == name if v.quoted else name in f)]
    if not names:
        raise FilterError(f"key {key!r}: {v.text!r} is not a TCP flag; use one of "
                          f"{', '.join(flags.TCP_FLAGS)} or a number", v.position)
    return _any([(col & flags.TCP_FLAGS[n]) != 0 for n in names])


def _number(field: str, key: str, v: syntax.Value) -> int | float:
    named = NAMED_NUMBERS.get(field, {})
    if v.text.lower() in named:
        return named[v.text.lower()]
    try:
        return int(v.text)
    except ValueError:
        pass
    try:
        n = float(v.text)
    except ValueError:
        n = math.nan
    if math.isfinite(n):
        return n
    names = f" or one of {', '.join(named)}" if named else ""
    raise FilterError(f"key {key!r} (field {field}) is numeric: {v.text!r} is not a number; write a "
                      f"number{names}", v.position)


def _regex(field: str, kind: Kind, key: str, v: syntax.Value) -> pl.Expr:
    try:  # Polars (Rust) regex syntax, not Python's: validate with the engine that will run it
        names_hit = pl.Series(list(flags.TCP_FLAGS), dtype=pl.String).str.contains(v.text)
    except pl.exceptions.ComputeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()]
        detail = next((ln for ln in lines if ln.startswith("error:")), lines[0] if lines else "")
        raise FilterError(f"key {key!r}: bad regular expression {v.text!r} ({detail}); quote the "
                          "pattern if it contains '|', '&' or ','", v.position) from exc
    col = pl.col(field)
    if field == "Flags":  # match the pattern against flag names, then test those bits
        names = [n for n, hit in zip(flags.TCP_FLAGS, names_hit, strict=True) if hit]
        return _any([(col & flags.TCP_FLAGS[n]) != 0 for n in names]) if names else pl.lit(False)
    if kind is Kind.TEXT:
        return col.str.contains(v.text)
    if kind is Kind.TEXT_LIST:
        return col.list.eval(pl.element().str.contains(v.text)).list.any()
    if kind is Kind.INTEGER_LIST:
        return col.list.eval(pl.element().cast(pl.String).str.contains(v.text)).list.any()
    return col.cast(pl.String).str.contains(v.text)
