"""The flowlake error hierarchy; every stage, sink, transport and CLI raises these.

One root (`FlowlakeError`) so callers can catch everything flowlake-made; messages name the fix.
"""

from __future__ import annotations


class FlowlakeError(Exception):
    """Root of every error flowlake raises on purpose."""


class SchemaError(FlowlakeError, ValueError):
    """A batch does not match the flow schema; `problems` lists one message per offending column."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("flow batch rejected: " + "; ".join(problems))


class ConfigError(FlowlakeError, ValueError):
    """A configuration value is wrong; the message names the field and a valid value."""


class FilterError(FlowlakeError, ValueError):
    """A filter expression cannot be parsed; `position` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int | None = None) -> None:
        self.position = position
        where = f" (at position {position})" if position is not None else ""
        super().__init__(message + where)


class TransportError(FlowlakeError):
    """A transport could not send or receive; `retry_after` is set when trying again may work."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class SinkError(FlowlakeError):
    """A sink could not accept or publish data; the message names the sink."""
