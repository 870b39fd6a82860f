"""An execution engine on the Binance venue against the local Binance peer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from quantumedge.execution.engine import EngineConfig, ExecutionEngine, ListEmitter
from quantumedge.execution.venue import BinanceVenue
from quantumedge.shared.backoff import Backoff
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import SYMBOL
from tests.support.execution_procs import SECRET, standard_book  # noqa: F401 - imported from here
from tests.support.waiting import wait_for as wait_until  # noqa: F401 - the execution tests import it from here


def make_venue(peer: BinanceTradingPeer, **kw: object) -> BinanceVenue:
    options = {
        "recv_window_ms": 1000,
        "read_timeout_s": 0.5,
        "connect_timeout_s": 0.5,
        "backoff": Backoff(base_s=0.05, cap_s=0.2),
        **kw,
    }
    credentials = options.pop("credentials", {"api_key": peer.api_key, "api_secret": SECRET})
    return BinanceVenue("testnet", peer.rest_url, peer.ws_url, credentials, [SYMBOL], **options)  # type: ignore[arg-type]


@contextmanager
def engine_on_peer(
    peer: BinanceTradingPeer, emitter: ListEmitter | None = None, config: EngineConfig | None = None, **kw: object
) -> Iterator[ExecutionEngine]:
    venue = make_venue(peer, **kw)
    engine = ExecutionEngine(venue, emitter or ListEmitter(), config or EngineConfig(symbols=(SYMBOL,)))
    venue.start(engine.on_update, engine.reconcile)
    engine.reconcile()
    try:
        yield engine
    finally:
        venue.stop()
