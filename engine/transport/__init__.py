"""Transports that carry flow batches to the processor; `open_sender(url)` picks one by scheme."""

from __future__ import annotations

from flowlake.engine import errors
from flowlake.engine.transport import memory
from flowlake.engine.transport.base import Ingest, Sender
from flowlake.engine.transport.flight import FlightSender, FlowFlightServer
from flowlake.engine.transport.kafka import KafkaSender

SENDERS = {"grpc": FlightSender, "grpc+tcp": FlightSender, "grpc+tls": FlightSender,
           "kafka": KafkaSender, "memory": memory.MemorySender}


def open_sender(url: str) -> Sender:
    """A sender for `url`; an unknown scheme raises an error listing the valid ones."""
    scheme = url.partition("://")[0]
    if scheme not in SENDERS:
        raise errors.TransportError(f"unknown transport {scheme!r} in {url!r}; valid schemes: "
                             f"{', '.join(sorted(SENDERS))}")
    return SENDERS[scheme](url)  # type: ignore[no-any-return]


__all__ = ["FlightSender", "FlowFlightServer", "Ingest", "KafkaSender", "SENDERS", "Sender", "open_sender"]
