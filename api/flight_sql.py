"""SQL over the `flows` table for the Flight query service (`api.flight_service`), through Polars SQL.

The `flows` table is the lake's LazyFrame, already cut to the caller's tenant scope and time range,
so whatever the SQL does it only sees those rows. Polars SQL can also read files by itself through
table functions (`read_parquet('...')`, `read_csv(...)`, quoted or not), which would step outside
that frame; they are refused in two independent ways: a lexical check rejects any `read_*` call and
anything but one SELECT/WITH statement, and in the final plan every file scan must sit under the
`flows` frame (which carries a random marker per query, so SQL cannot fake it).
"""

from __future__ import annotations

import re
import uuid

import polars as pl

from flowlake.api.flight_ticket import TicketError

# One token of SQL: comments and literals are matched first, so `read_csv` inside a string is harmless.
_TOKEN = re.compile(r"""
    (?P<comment>--[^\n]*|/\*.*?(?:\*/|$))
  | (?P<string>'(?:[^']|'')*(?:'|$))
  | (?P<quoted>"(?:[^"]|"")*(?:"|$)|`[^`]*(?:`|$))
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<other>\S)
""", re.VERBOSE | re.DOTALL)
_SCAN = re.compile(r"(?m)^\s*\w+ SCAN\b")
_MARK = "__flowlake_scope__"
_LINE_COL = re.compile(r"Line: (\d+), Column: (\d+)")
_QUOTED_NAME = re.compile(r"""(?:column|function|relation|table)\s+["'](\w+)["']""")
TABLE = "flows"


def _tokens(sql: str) -> list[tuple[str, str, int]]:
    """(kind, text, offset) of every token except comments; a quoted identifier's text is its name."""
    out = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "other"
        text = m.group()
        if kind == "comment":
            continue
        if kind == "quoted":
            kind, text = "word", text[1:-1].replace('""', '"')
        out.append((kind, text, m.start()))
    return out


def check(sql: str) -> None:
    """Refuse anything but one SELECT/WITH statement over `flows`, and every file-reading table function."""
    tokens = _tokens(sql)
    if not tokens:
        raise TicketError("sql is empty; send e.g. SELECT count(*) FROM flows", "sql", 0)
    first = tokens[0]
    if not (first[0] == "word" and first[1].upper() in ("SELECT", "WITH")):
        raise TicketError(f"only SELECT queries over the `{TABLE}` table are allowed (found "
                          f"{first[1]!r} at position {first[2]})", "sql", first[2])
    for i, (kind, text, pos) in enumerate(tokens):
        # Literal forms this lexer does not model ($$dollar$$ or $tag$ quoting, E'\'' escapes) could hide
        # text from the checks below: they are refused rather than guessed at.
        if "$" in text and kind != "string":
            raise TicketError(f"'$' at position {pos}: dollar-quoted strings and $ in names are not supported; "
                              "quote text with '...'", "sql", pos)
        if (kind == "word" and text in ("E", "e") and i + 1 < len(tokens) and tokens[i + 1][0] == "string"
                and tokens[i + 1][2] == pos + 1):
            raise TicketError(f"E'...' escape strings (position {pos}) are not supported; use '...' with '' for "
                              "a quote", "sql", pos)
        if kind == "other" and text == ";" and any(t[0] != "other" or t[1] != ";" for t in tokens[i + 1:]):
            raise TicketError(f"one statement per query (found ';' at position {pos})", "sql", pos)
        if kind == "word" and text.lower().startswith("read_"):
            raise TicketError(f"{text}(...) at position {pos} reads files outside the `{TABLE}` table; query "
                              f"the `{TABLE}` table only", "sql", pos)


def _scans(plan: str) -> int:
    return len(_SCAN.findall(plan))


def execute(flows: pl.LazyFrame, sql: str) -> pl.LazyFrame:
    """The lazy result of `sql` over `flows`; its schema is resolved here, so bad SQL fails before streaming."""
    check(sql)
    marker = uuid.uuid4().hex  # a value the SQL cannot know: it names the plan nodes `flows` contributes
    marked = flows.with_columns(pl.lit(marker).alias(_MARK)).drop(_MARK)
    ctx = pl.SQLContext(frames={TABLE: marked}, register_globals=False, eager=False)
    try:
        result = ctx.execute(sql)
        result.collect_schema()
        plan = result.explain(optimized=False)
        per_table = _scans(flows.explain(optimized=False))
    except pl.exceptions.PolarsError as exc:
        raise sql_error(sql, exc) from exc
    if _scans(plan) != plan.count(marker) * per_table:  # the backstop behind `check`: a scan of its own
        raise TicketError(f"the query reads data outside the `{TABLE}` table; query `{TABLE}` only", "sql")
    return result


def sql_error(sql: str, exc: Exception) -> TicketError:
    """A TicketError with Polars' reason (without its plan dump, which names lake files) and a position."""
    reason = str(exc).split("\n\nResolved plan", 1)[0].split("\n\nThis error occurred", 1)[0].strip()
    reason = reason.split("\n")[0] if "sql parser error" in reason else reason
    position = _position(sql, reason)
    where = f" at position {position}" if position is not None else ""
    return TicketError(f"bad SQL{where}: {reason}", "sql", position)


def _position(sql: str, reason: str) -> int | None:
    """0-based offset of the problem: from the parser's Line/Column, the name it quotes, or the end (EOF)."""
    m = _LINE_COL.search(reason)
    if m:
        line, col = int(m.group(1)), int(m.group(2))
        lines = sql.split("\n")
        return min(len(sql), sum(len(x) + 1 for x in lines[:line - 1]) + col - 1)
    if "found: EOF" in reason:
        return len(sql.rstrip())
    m = _QUOTED_NAME.search(reason)
    if m:
        for kind, text, pos in _tokens(sql):
            if kind == "word" and text.lower() == m.group(1).lower():
                return pos
    return None
