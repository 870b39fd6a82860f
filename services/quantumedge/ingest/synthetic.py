"""A deterministic synthetic market: the data every default model is trained on and every demo runs on.

Per symbol and step (`step_ms`, one second by default), a log-price moves with a Markov-switching
volatility (low / high). A latent order-flow pressure `z` (AR(1), time constant `PRESSURE_TAU_S`,
minutes) shows in the book (imbalance of the top of book and of the depth, with noise) and in the trade
flow (aggressor side). With `edge_bps_per_s` > 0 (the default, `PLANTED_EDGE_BPS_PER_S`) the pressure
also drives the drift: each second the mid moves by `edge * z` bps on top of the noise, so flow that
leans one way leads a minute-scale move. Sized so a strategy that knows `z` earns well above a taker
round trip (20 bp) with the default barriers. `edge_bps_per_s=0` is the market with no edge: the same
books and flows, but prices a pure random walk, so nothing in the features predicts them.

`latent(symbol, time_ns)` tells the pressure in effect at a time (for the oracle strategy that knows the
planted signal; nothing else reads it). High volatility widens the spread, thins the depth and adds trades.

Every step and every symbol yields, in exchange-time order: 0..k trades inside the step, one depth
update (`DEPTH_LEVELS` per side) at the step time, and one top of book 1 µs later (consistent with
depth level 0). The same seed gives the same events, byte for byte; each symbol has its own random
stream, so adding a symbol does not change the others.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from quantumedge.ingest.settings import PLANTED_EDGE_BPS_PER_S
from quantumedge.v1 import common_pb2, ingest_pb2, market_pb2

SOURCE = "synthetic"
DEFAULT_BASE_PRICES = {"BTCUSDT": 60_000.0, "ETHUSDT": 3_000.0}
DEPTH_LEVELS = 10
MAX_TRADES_PER_STEP = 12
TOB_OFFSET_NS = 1_000  # the top of book follows its depth update by 1 µs: ties never depend on sort stability

# Per-second regime switching rates (mean durations: low vol 2 h, high vol 40 min).
P_LOW_TO_HIGH_PER_S = 1 / 7200
P_HIGH_TO_LOW_PER_S = 1 / 2400
SIGMA_LOW_BPS_PER_S = 1.5  # volatility of the log mid per second of market time, in basis points
SIGMA_HIGH_BPS_PER_S = 3.5
PRESSURE_TAU_S = 600.0  # the pressure's memory: it leads moves over minutes
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
    z: float = 0.0
    latent_times: list[int] = field(default_factory=list)  # step times and the pressure from then on
    latent_z: list[float] = field(default_factory=list)
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
        step_ms: int = 1000,
        base_prices: dict[str, float] | None = None,
        max_steps: int | None = None,
        block: int = 2048,
        edge_bps_per_s: float = PLANTED_EDGE_BPS_PER_S,
        keep_latent: bool = False,
    ) -> None:
        self.symbols = list(symbols or DEFAULT_BASE_PRICES)
        self.seed = seed
        self.start_ns = time.time_ns() if start_ns is None else int(start_ns)
        self.step_ns = int(step_ms) * 1_000_000
        step_s = self.step_ns / 1e9
        self.edge_bps_per_s = float(edge_bps_per_s)
        self._phi = math.exp(-step_s / PRESSURE_TAU_S)
        self._drift_per_z = self.edge_bps_per_s * step_s
        self._sigma = (SIGMA_LOW_BPS_PER_S * math.sqrt(step_s), SIGMA_HIGH_BPS_PER_S * math.sqrt(step_s))
        self._switch = (P_LOW_TO_HIGH_PER_S * step_s, P_HIGH_TO_LOW_PER_S * step_s)
        self.keep_latent = keep_latent
        self._states: dict[str, _SymbolState] = {}
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
        for batch in self.steps(n_steps):
            yield from batch

    def steps(self, n_steps: int | None = None) -> Iterator[list[market_pb2.MarketEvent]]:
        """The same events as `events`, one list per step (every symbol's events of that step, in order)."""
        states = [self._new_state(s) for s in self.symbols]
        self._states = {st.symbol: st for st in states}
        step = 0
        while n_steps is None or step < n_steps:
            step += 1
            t_end = self.start_ns + step * self.step_ns
            batch: list[tuple[int, int, int, market_pb2.MarketEvent]] = []
            for idx, st in enumerate(states):
                for rank, ev in self._step(st, t_end):
                    batch.append((ev.exchange_time_ns, rank, idx, ev))
            batch.sort(key=lambda item: item[:3])
            yield [item[3] for item in batch]

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
        u_vol, _, _ = d["u"]
        eps, eta, spread_noise, imb_noise = d["normal"]

        # The regime switches first, then this step's move (driven by the pressure so far), then the pressure.
        p_up, p_down = self._switch
        st.vol_high = u_vol >= p_down if st.vol_high else u_vol < p_up
        sigma = self._sigma[1 if st.vol_high else 0]
        ret_bps = self._drift_per_z * st.z + sigma * eps
        st.log_mid += ret_bps * 1e-4
        st.z = self._phi * st.z + math.sqrt(1 - self._phi**2) * eta
        if self.keep_latent:
            st.latent_times.append(t_end)
            st.latent_z.append(st.z)
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

    def latent(self, symbol: str, time_ns: int) -> float:
        """The planted pressure in effect just before `time_ns` (needs keep_latent=True; 0 before the first step)."""
        st = self._states.get(symbol)
        if st is None or not st.latent_times:
            return 0.0
        i = bisect.bisect_left(st.latent_times, time_ns) - 1
        return st.latent_z[i] if i >= 0 else 0.0

    def expected_move_bps(self, z: float, horizon_s: float) -> float:
        """E[log-mid move over the next horizon_s | pressure z], in bps: the planted signal, exactly."""
        steps = horizon_s * 1e9 / self.step_ns
        phi = self._phi
        return self._drift_per_z * z * phi * (1 - phi**steps) / (1 - phi) if phi < 1 else 0.0

    def volatility_bps(self, horizon_s: float) -> float:
        """Noise of the mid over horizon_s in the low-volatility regime, in bps."""
        return SIGMA_LOW_BPS_PER_S * math.sqrt(horizon_s)

    # -- MarketSource -------------------------------------------------------------------------------
    def run(
        self,
        emit: Callable[[market_pb2.MarketEvent], None],
        stop: threading.Event,
        speed: float | None = None,
        n_steps: int | None = None,
        after_step: Callable[[], None] | None = None,
        before_step: Callable[[list[market_pb2.MarketEvent]], None] | None = None,
    ) -> None:
        """Emit events until `stop` is set or `n_steps` (default `max_steps`) steps are done.

        speed None/0 = as fast as possible; 1 = real time (one step per `step_ms`); N = N times faster.
        `after_step` runs once every event of a step was emitted (lockstep waits there for the consumers);
        `before_step` gets each step's events before the first is emitted (lockstep moves its market clock there).
        """
        n_steps = n_steps if n_steps is not None else self.max_steps
        self._running = True
        self._started_at = time.monotonic()
        first_ns: int | None = None
        try:
            for batch in self.steps(n_steps or None):
                if before_step is not None:
                    before_step(batch)
                for ev in batch:
                    if stop.is_set():
                        return
                    if speed:
                        first_ns = ev.exchange_time_ns if first_ns is None else first_ns
                        due = self._started_at + (ev.exchange_time_ns - first_ns) / 1e9 / speed
                        delay = due - time.monotonic()
                        if delay > 0 and stop.wait(delay):
                            return
                    emit(ev)
                    counter = self._counters.setdefault((ev.symbol, ev.WhichOneof("payload")), _StreamCounters())
                    counter.events += 1
                    counter.last_time_ns = ev.exchange_time_ns
                if after_step is not None:
                    after_step()
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
