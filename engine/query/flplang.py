"""Parser for the processor query language (FLP `keep_entry_query`); `engine.query.flpexpr` compiles it.

This is the flowlogs-pipeline filtering language (`reference/netobserv.md` §3.1; FLP docs/filtering.md),
used by the `filter` stage and by per-output `filters:` in the processor config. It is not the console
filter syntax of `engine.query.syntax`. Grammar (`and` binds tighter than `or`; keywords are
case-insensitive; field names are flow field names, case-sensitive):

    query := and_q ("or" and_q)*          and_q := term ("and" term)*
    term  := "(" query ")" | "with" "(" FIELD ")" | "without" "(" FIELD ")" | FIELD OP VALUE
    OP    := = | != | =~ | !~ | > | >= | < | <=
    VALUE := "double-quoted" | 'single-quoted' | NUMBER      (\\" and \\\\ escape inside quotes)

Every node keeps the 0-based offset of its first character, so errors can point at it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flowlake.engine.errors import FilterError

OPERATORS = ("!=", "!~", "=~", ">=", "<=", "=", ">", "<")  # longest first: `>=` is not `>` then `=`
_OPS_HELP = "one of = != =~ !~ > >= < <="
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_SPACE = re.compile(r"\s*")


@dataclass(frozen=True)
class Compare:
    """`field op value`; `value` is a str for quoted text, an int or float for a number."""

    field: str
    op: str
    value: str | int | float
    position: int  # of the field
    value_position: int


@dataclass(frozen=True)
class Presence:
    """`with(field)` (present=True) or `without(field)`."""

    field: str
    present: bool
    position: int  # of the field


@dataclass(frozen=True)
class BoolOp:
    """`and` / `or` over two or more operands (flattened: `a and b and c` is one node)."""

    op: str  # "and" or "or"
    operands: tuple[Node, ...]


Node = Compare | Presence | BoolOp


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def _skip(self) -> None:
        m = _SPACE.match(self.text, self.i)
        self.i = m.end() if m else self.i

    def _peek_word(self) -> str:
        self._skip()
        m = _FIELD.match(self.text, self.i)
        return m.group(0).lower() if m else ""

    def _expect(self, char: str, what: str) -> None:
        self._skip()
        if not self.text.startswith(char, self.i):
            raise FilterError(f"expected {char!r} {what}, found {self._found()}", self.i)
        self.i += 1

    def _found(self) -> str:
        return repr(self.text[self.i:self.i + 12]) if self.i < len(self.text) else "the end of the query"

    def query(self) -> Node:
        return self._chain("or", self._and_query)

    def _and_query(self) -> Node:
        return self._chain("and", self._term)

    def _chain(self, word: str, operand: Callable[[], Node]) -> Node:
        items = [operand()]
        while self._peek_word() == word:
            self.i += len(word)
            items.append(operand())
        return items[0] if len(items) == 1 else BoolOp(word, tuple(items))

    def _term(self) -> Node:
        self._skip()
        start = self.i
        if self.text.startswith("(", self.i):
            self.i += 1
            inner = self.query()
            self._expect(")", f"to close the '(' at position {start}")
            return inner
        word = self._peek_word()
        if word in ("with", "without"):
            after = _SPACE.match(self.text, self.i + len(word))
            if after and self.text.startswith("(", after.end()):
                self.i = after.end() + 1
                field, pos = self._field()
                self._expect(")", f"after the field name in {word}(...)")
                return Presence(field, word == "with", pos)
        field, pos = self._field()
        self._skip()
        op = next((o for o in OPERATORS if self.text.startswith(o, self.i)), None)
        if op is None:
            raise FilterError(f"expected an operator ({_OPS_HELP}) after field {field}, found {self._found()}",
                              self.i)
        self.i += len(op)
        value, vpos = self._value(field, op)
        return Compare(field, op, value, pos, vpos)

    def _field(self) -> tuple[str, int]:
        self._skip()
        m = _FIELD.match(self.text, self.i)
        if m is None:
            if self.i >= len(self.text):
                raise FilterError("the query ends where a field name, '(' or with(...) was expected; "
                                  "remove the trailing 'and'/'or'", self.i)
            raise FilterError(f"expected a field name (such as SrcK8S_Namespace), '(' or with(...), found "
                              f"{self._found()}", self.i)
        self.i = m.end()
        return m.group(0), m.start()

    def _value(self, field: str, op: str) -> tuple[str | int | float, int]:
        self._skip()
        start = self.i
        if self.i < len(self.text) and self.text[self.i] in "\"'":
            return self._quoted(self.text[self.i]), start
        m = _NUMBER.match(self.text, self.i)
        if m is None or _FIELD.match(self.text, m.end()):
            raise FilterError(f"expected a quoted string or a number after {field}{op}, found {self._found()}; "
                              f'quote text values, e.g. {field}{op}"value"', start)
        self.i = m.end()
        return (float(m.group(0)) if m.group(1) else int(m.group(0))), start

    def _quoted(self, quote: str) -> str:
        start = self.i
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "\\" and self.i + 1 < len(self.text) and self.text[self.i + 1] in (quote, "\\"):
                out.append(self.text[self.i + 1])
                self.i += 2
            elif c == quote:
                self.i += 1
                return "".join(out)
            else:
                out.append(c)
                self.i += 1
        raise FilterError(f"unterminated string: add the closing {quote}", start)


def parse(text: str) -> Node | None:
    """The syntax tree of a query, None for an empty one; `FilterError(message, position)` if bad."""
    if not text.strip():
        return None
    p = _Parser(text)
    node = p.query()
    p._skip()
    if p.i < len(text):
        hint = "; a ')' has no matching '('" if text[p.i] == ")" else "; join conditions with 'and' or 'or'"
        raise FilterError(f"unexpected {p._found()} after a complete condition{hint}", p.i)
    return node
