"""A deterministic synthetic market: the data every default model is trained on and every demo runs on.

Per symbol, a log-price follows a Markov-switching process: a volatility state (low / high) and a
trend state (range / up / down) switch with small per-step probabilities. A latent order-flow
pressure `z` (AR(1)) shows up in the book (imbalance of the top of book and of the depth) and in the
trade flow (aggressor side), and moves the *next* step's return a little (`FLOW_BETA`). So a model
that reads imbalance and flow has something real but weak to learn, and the trend regimes give the
longer horizons a momentum edge. High volatility widens the spread, thins the depth and adds trades.

Every step of `step_ms` and every symbol yields, in exchange-time order: 0..k trades inside the
step, one depth update (`DEPTH_LEVELS` per side) at the step time, and one top of book 1 µs later
(consistent with depth level 0). The same seed gives the same events, byte for byte; each symbol
has its own random stream, so adding a symbol does not change the others.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from quantumedge.v1 import common_pb2, ingest_pb2, market_pb2

SOURCE = "synthetic"
DEFAULT_BASE_PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}
DEPTH_LEVELS = 10
MAX_TRADES_PER_STEP = 12
TOB_OFFSET_NS = 1_000  # the top of book follows its depth update by 1 µs: ties never depend on sort stability

# Per-step regime switching probabilities (mean durations: low vol 2500 steps, high vol 900, range 1500, trend 700).
P_LOW_TO_HIGH = 1 / 2500
P_HIGH_TO_LOW = 1 / 900
P_RANGE_TO_TREND = 1 / 1500
P_TREND_TO_RANGE = 1 / 700
SIGMA_LOW_BPS = 1.0  # per-step volatility of the log mid, in basis points
SIGMA_HIGH_BPS = 2.6
TREND_DRIFT = 0.08  # drift per step in trend regimes, as a fraction of the step volatility
FLOW_PHI = 0.8  # persistence of the order-flow pressure
FLOW_BETA = 0.15  # share of next-step return explained by the pressure (correlation)
SPREAD_LOW_BPS = 1.0
SPREAD_HIGH_BPS = 2.8
TRADES_LOW = 2.0  # mean trades per step
TRADES_HIGH = 4.0
DEPTH_THIN_HIGH = 0.45  # depth multiplier in high volatility


def _symbol_params(symbol: str, base_prices: dict[str, float]) -> tuple[float, float, float]:
    """(start price, tick size, base quantity per level) — quantities sized to ~30k quote per level."""
    price = base_prices.get(symbol) or DEFAULT_BASE_PRICES.get(symbol) or 100.0
    tick = 0.01 if price >= 10 else 0.0001
    return float(price), tick, 30_000.0 / price


@dataclass
class _StreamCounters:
    events: int = 0
    last_time_ns: int = 0


@dataclass
class _SymbolState:
    symbol: str
    rng: np.random.Generator
    log_mid: float
    tick: float
    base_qty: float
    vol_high: bool = False
    trend: int = 0  # 0 range, +1 up, -1 down
    z: float = 0.0
    pending_return_bps: float = 0.0
    trade_id: int = 0
    update_id: int = 0
    seq: dict[str, int] = field(default_factory=lambda: {"trade": 0, "top_of_book": 0, "depth": 0})
    buf: dict[str, list] = field(default_factory=dict)
    buf_pos: int = 0
    buf_len: int = 0


class SyntheticMarket:
    """Deterministic market events for `symbols`; also a MarketSource (`name`, `run`, `stream_status`).

    `start_ns=None` starts the clock at the wall-clock time of construction (useful when downstream
    staleness guards compare event time with now); any int gives fully reproducible timestamps.
    """

    name = SOURCE

    def __init__(
        self,
        symbols: list[str] | None = None,
        seed: int = 7,
        start_ns: int | None = 1_700_000_000_000_000_000,
        step_ms: int = 100,
        base_prices: dict[str, float] | None = None,
        max_steps: int | None = None,
        block: int = 2048,
    ) -> None:
        self.symbols = list(symbols or DEFAULT_BASE_PRICES)
        self.seed = seed
        self.start_ns = time.time_ns() if start_ns is None else int(start_ns)
        self.step_ns = int(step_ms) * 1_000_000
        self.base_prices = dict(base_prices or {})
        self.max_steps = max_steps
        self._block = block
        self._counters: dict[tuple[str, str], _StreamCounters] = {}
        self._running = False
        self._started_at = 0.0

    # -- the event stream ----------------------------------------------------------------------------
    def events(self, n_steps: int | None = None) -> Iterator[market_pb2.MarketEvent]:
        """Events of `n_steps` steps (None = forever), globally in exchange-time order. Restartable:
        every call begins again from the seed."""
        states = [self._new_state(s) for s in self.symbols]
        step = 0
        while n_steps is None or step < n_steps:
            step += 1
            t_end = self.start_ns + step * self.step_ns
            batch: list[tuple[int, int, int, market_pb2.MarketEvent]] = []
            for idx, st in enumerate(states):
                for rank, ev in self._step(st, t_end):
                    batch.append((ev.exchange_time_ns, rank, idx, ev))
            batch.sort(key=lambda item: item[:3])
            for item in batch:
                yield item[3]

    def _new_state(self, symbol: str) -> _SymbolState:
        # crc32, not hash(): str hashes are salted per process and would break reproducibility.
        seq = np.random.SeedSequence([self.seed, zlib.crc32(symbol.encode())])
        price, tick, base_qty = _symbol_params(symbol, self.base_prices)
        return _SymbolState(symbol, np.random.Generator(np.random.PCG64(seq)), math.log(price), tick, base_qty)

    def _draws(self, st: _SymbolState) -> dict[str, list]:
        """Next step's random numbers, drawn in blocks (numpy per scalar draw would dominate the cost)."""
        if st.buf_pos >= st.buf_len:
            n, rng = self._block, st.rng
            st.buf = {
                "u": rng.random((n, 3)).tolist(),
                "normal": rng.standard_normal((n, 4)).tolist(),
                "depth": rng.standard_normal((n, 2 * DEPTH_LEVELS)).tolist(),
                "n_lo": rng.poisson(TRADES_LOW, n).tolist(),
                "n_hi": rng.poisson(TRADES_HIGH - TRADES_LOW, n).tolist(),
                "side": rng.random((n, MAX_TRADES_PER_STEP)).tolist(),
                "qty": rng.exponential(1.0, (n, MAX_TRADES_PER_STEP)).tolist(),
            }
            st.buf_pos, st.buf_len = 0, n
        i = st.buf_pos
        st.buf_pos += 1
        return {k: v[i] for k, v in st.buf.items()}

    def _step(self, st: _SymbolState, t_end: int) -> list[tuple[int, market_pb2.MarketEvent]]:
        d = self._draws(st)
        u_vol, u_trend, u_dir = d["u"]
        eps, eta, spread_noise, imb_noise = d["normal"]

        # Regimes switch first, then this step's price move (which used the previous pressure).
        if st.vol_high:
            st.vol_high = u_vol >= P_HIGH_TO_LOW
        else:
            st.vol_high = u_vol < P_LOW_TO_HIGH
        if st.trend == 0:
            if u_trend < P_RANGE_TO_TREND:
                st.trend = 1 if u_dir < 0.5 else -1
        elif u_trend < P_TREND_TO_RANGE:
            st.trend = 0
        sigma = SIGMA_HIGH_BPS if st.vol_high else SIGMA_LOW_BPS
        ret_bps = sigma * (TREND_DRIFT * st.trend + FLOW_BETA * st.z + math.sqrt(1 - FLOW_BETA**2) * eps)
        st.log_mid += ret_bps * 1e-4
        st.z = FLOW_PHI * st.z + math.sqrt(1 - FLOW_PHI**2) * eta
        mid = math.exp(st.log_mid)

        # Book: spread widens and depth thins in high volatility; the pressure tilts quantities.
        tick = st.tick
        spread_bps = (SPREAD_HIGH_BPS if st.vol_high else SPREAD_LOW_BPS) * (1.0 + 0.3 * abs(spread_noise))
        spread_ticks = max(1, round(spread_bps * 1e-4 * mid / tick))
        bid = math.floor((mid - spread_ticks * tick / 2) / tick) * tick
        ask = bid + spread_ticks * tick
        gap = max(1, round(0.5e-4 * mid / tick)) * tick
        tilt = 0.45 * math.tanh(0.8 * st.z + 0.5 * imb_noise)
        thin = DEPTH_THIN_HIGH if st.vol_high else 1.0
        noise = d["depth"]
        bids, asks = [], []
        for lvl in range(DEPTH_LEVELS):
            scale = st.base_qty * thin * (1.0 + 0.15 * lvl)
            bq = scale * (1.0 + tilt) * math.exp(0.3 * noise[lvl])
            aq = scale * (1.0 - tilt) * math.exp(0.3 * noise[DEPTH_LEVELS + lvl])
            bids.append(common_pb2.PriceLevel(price=round(bid - lvl * gap, 8), quantity=round(bq, 6)))
            asks.append(common_pb2.PriceLevel(price=round(ask + lvl * gap, 8), quantity=round(aq, 6)))
        bid, ask = bids[0].price, asks[0].price

        out: list[tuple[int, market_pb2.MarketEvent]] = []
        # Trades inside (t_end - step, t_end): aggressor side leans with the pressure.
        n_trades = d["n_lo"] + (d["n_hi"] if st.vol_high else 0)
        n_trades = min(n_trades, MAX_TRADES_PER_STEP)
        p_buy = 1.0 / (1.0 + math.exp(-1.2 * st.z))
        for j in range(n_trades):
            buy = d["side"][j] < p_buy
            st.trade_id += 1
            t = t_end - self.step_ns + (j + 1) * self.step_ns // (n_trades + 1)
            trade = market_pb2.Trade(
                price=ask if buy else bid,
                quantity=round(0.15 * st.base_qty * d["qty"][j] + 1e-6, 6),
                buyer_is_maker=not buy,
                trade_id=st.trade_id,
            )
            out.append((1, self._event(st, "trade", t, trade=trade)))
        st.update_id += 1
        depth = market_pb2.DepthUpdate(bids=bids, asks=asks, last_update_id=st.update_id)
        out.append((2, self._event(st, "depth", t_end, depth=depth)))
        tob = market_pb2.TopOfBook(
            bid_price=bid, bid_quantity=bids[0].quantity, ask_price=ask, ask_quantity=asks[0].quantity
        )
        out.append((3, self._event(st, "top_of_book", t_end + TOB_OFFSET_NS, top_of_book=tob)))
        return out

    def _event(self, st: _SymbolState, kind: str, t: int, **payload: object) -> market_pb2.MarketEvent:
        st.seq[kind] += 1
        return market_pb2.MarketEvent(
            symbol=st.symbol,
            exchange_time_ns=t,
            receive_time_ns=t + 1_000_000,  # a fixed 1 ms "network" delay keeps the stream reproducible
            sequence=st.seq[kind],
            source=SOURCE,
            **payload,
        )

    # -- MarketSource -------------------------------------------------------------------------------
    def run(
        self,
        emit: Callable[[market_pb2.MarketEvent], None],
        stop: threading.Event,
        speed: float | None = None,
        n_steps: int | None = None,
    ) -> None:
        """Emit events until `stop` is set or `n_steps` (default `max_steps`) steps are done.

        speed None/0 = as fast as possible; 1 = real time (one step per `step_ms`); N = N times faster.
        """
        n_steps = n_steps if n_steps is not None else self.max_steps
        self._running = True
        self._started_at = time.monotonic()
        first_ns: int | None = None
        try:
            for ev in self.events(n_steps or None):
                if stop.is_set():
                    break
                if speed:
                    first_ns = ev.exchange_time_ns if first_ns is None else first_ns
                    due = self._started_at + (ev.exchange_time_ns - first_ns) / 1e9 / speed
                    delay = due - time.monotonic()
                    if delay > 0 and stop.wait(delay):
                        break
                emit(ev)
                counter = self._counters.setdefault((ev.symbol, ev.WhichOneof("payload")), _StreamCounters())
                counter.events += 1
                counter.last_time_ns = ev.exchange_time_ns
        finally:
            self._running = False

    def stream_status(self) -> list[ingest_pb2.StreamStatus]:
        """One StreamStatus per symbol and stream (trade, top_of_book, depth)."""
        elapsed = max(time.monotonic() - self._started_at, 1e-9) if self._started_at else 0.0
        out = []
        for symbol in self.symbols:
            for stream in ("trade", "top_of_book", "depth"):
                c = self._counters.get((symbol, stream), _StreamCounters())
                out.append(
                    ingest_pb2.StreamStatus(
                        stream=stream,
                        symbol=symbol,
                        connected=self._running,
                        last_event_time_ns=c.last_time_ns,
                        events_per_second=c.events / elapsed if elapsed else 0.0,
                        events=c.events,
                        book_depth_levels=DEPTH_LEVELS if stream == "depth" else 0,
                    )
                )
        return out
