"""Parser for the NetObserv console filter syntax; `engine.query.filters` compiles its output.

`k1=a,b&k2!~x|k3>=10`: `|` separates OR groups, `&` ANDs clauses within a group, `,` ORs values of
one key. Inside a double-quoted value `|`, `&` and `,` are literal (so a regex can use them) and
`\\"` / `\\\\` escape a quote / backslash. Every node keeps its 0-based offset so errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowlake.engine.errors import FilterError

# Longest first, so `!=` is not read as `!` + `=`, nor `>=` as `>`.
OPERATORS = ("!=", "!~", ">=", "<=", "=", "~", ">", "<")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_OPS_HELP = "one of = != ~ !~ >= <= > <"


@dataclass(frozen=True)
class Value:
    text: str
    quoted: bool
    position: int


@dataclass(frozen=True)
class Clause:
    key: str
    op: str
    values: tuple[Value, ...]
    position: int  # of the key


Query = tuple[tuple[Clause, ...], ...]  # OR of AND-groups


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0

    def _skip_spaces(self) -> None:
        while self.i < len(self.text) and self.text[self.i] == " ":
            self.i += 1

    def _at(self, chars: str) -> bool:
        return self.i < len(self.text) and self.text[self.i] in chars

    def query(self) -> Query:
        groups: list[tuple[Clause, ...]] = []
        clauses: list[Clause] = []
        while True:
            clauses.append(self.clause())
            if self.i >= len(self.text):
                groups.append(tuple(clauses))
                return tuple(groups)
            if self.text[self.i] == "|":
                groups.append(tuple(clauses))
                clauses = []
            self.i += 1  # past `&` or `|`

    def clause(self) -> Clause:
        self._skip_spaces()
        start = self.i
        while self.i < len(self.text) and self.text[self.i] in _KEY_CHARS:
            self.i += 1
        key = self.text[start:self.i]
        self._skip_spaces()
        if not key:
            if self.i >= len(self.text) or self._at("&|"):
                raise FilterError("empty filter: nothing between separators; write key=value, "
                                  "or remove the extra '&' / '|'", start)
            if not self._at("!=~<>"):
                raise FilterError(f"unexpected character {self.text[self.i]!r}: a filter key is letters, "
                                  "digits and '_' (e.g. src_namespace)", self.i)
            raise FilterError("empty filter key before the operator: write key=value, "
                              "e.g. namespace=default", start)
        op = next((o for o in OPERATORS if self.text.startswith(o, self.i)), None)
        if op is None:
            found = f"found {self.text[self.i]!r}" if self.i < len(self.text) else "found the end"
            raise FilterError(f"expected an operator after key {key!r} ({_OPS_HELP}), {found}", self.i)
        self.i += len(op)
        values = [self.value(key, op)]
        while self._at(","):
            self.i += 1
            values.append(self.value(key, op))
        return Clause(key, op, tuple(values), start)

    def value(self, key: str, op: str) -> Value:
        self._skip_spaces()
        if self._at('"'):
            return self._quoted(key)
        start = self.i
        while self.i < len(self.text) and self.text[self.i] not in ",&|":
            self.i += 1
        raw = self.text[start:self.i]
        text = raw.strip(" ")
        if not text:
            raise FilterError(f"missing value after {key}{op}; to match an empty or missing value "
                              f"write {key}=\"\"", start)
        return Value(text, False, start + (len(raw) - len(raw.lstrip(" "))))

    def _quoted(self, key: str) -> Value:
        start = self.i
        self.i += 1
        out: list[str] = []
        while self.i < len(self.text):
            c = self.text[self.i]
            if c == "\\" and self.text[self.i + 1:self.i + 2] in ('"', "\\"):
                out.append(self.text[self.i + 1])
                self.i += 2
                continue
            if c == '"':
                self.i += 1
                self._skip_spaces()
                if self.i < len(self.text) and not self._at(",&|"):
                    raise FilterError(f"unexpected {self.text[self.i]!r} after the quoted value of key "
                                      f"{key!r}: expected ',', '&', '|' or the end", self.i)
                return Value("".join(out), True, start)
            out.append(c)
            self.i += 1
        raise FilterError(f"unclosed quote in the value of key {key!r}: add the closing '\"'", start)


def parse(text: str) -> Query:
    """The OR-of-AND groups of a filter string; `()` (no filtering) for an empty or blank string."""
    if not text.strip(" "):
        return ()
    return _Parser(text).query()
