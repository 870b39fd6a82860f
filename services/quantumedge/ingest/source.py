"""What every market-data source (Binance, replay, synthetic) offers the ingest service."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from quantumedge.v1 import ingest_pb2, market_pb2

Emit = Callable[[market_pb2.MarketEvent], None]


@runtime_checkable
class MarketSource(Protocol):
    """A source of normalised MarketEvents.

    `run` blocks in the caller's thread until `stop` is set or the source is exhausted, calling
    `emit` for every valid event (never for malformed or out-of-order data). `stream_status` may be
    called from other threads at any time.
    """

    name: str

    def run(self, emit: Emit, stop: threading.Event) -> None: ...

    def stream_status(self) -> list[ingest_pb2.StreamStatus]: ...
