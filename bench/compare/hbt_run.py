"""The hftbacktest side of `make bench-compare`; runs inside .cache/bench-compare/venv and never imports quantumedge.

    hbt_run.py EVENTS.npy OUT.json SPEC_JSON

SPEC_JSON (bench/compare/spec.py builds it from QuantumEdge's execution settings) carries the paper venue's
model: order entry latency, feed latency, maker/taker fees, tick and lot size, the order size and how many
market orders to aim for. The asset gets hftbacktest's risk-averse queue model (a resting order fills only
after the volume ahead of it has traded: QuantumEdge's paper_queue_position), a constant order latency and a
trading-value fee model. The strategy wakes on every depth or trade feed event: it reads the top of book and
the trades since the last event, keeps averages of mid and signed trade flow and, every EVERY-th event, sends
an IOC market order (flat: the signal's way; holding: the closing one). EVERY is chosen so the order count
lands near the target. The run is timed in CPU seconds (time.process_time) after a warm-up run on the first
rows has compiled the numba code; warm-up and data preparation are reported on their own.

The predecessor's lighter variant (mid only, every 10th event, 1 ms latency, 1 bp fees, the capture's own
receive-time feed latency) is run too, as a second figure."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.validation import correct_event_order, event_dtype
from hftbacktest.order import IOC, MARKET
from numba import njit

WARMUP_ROWS = 20_000
BUY_FLAG = 1 << 29
FEED = 2  # wait_next_feed: a feed event arrived


@njit
def _order(hbt, order_id: int, qty: float, sell: bool, bid: float, ask: float) -> None:
    if sell:
        hbt.submit_sell_order(0, order_id, bid, qty, IOC, MARKET, False)
    else:
        hbt.submit_buy_order(0, order_id, ask, qty, IOC, MARKET, False)


@njit
def per_event(hbt, every: int, qty: float):
    """(feed events seen, orders sent): reads book and trades on every feed event, orders every EVERY-th."""
    ticks, orders, avg, flow = 0, 0, 0.0, 0.0
    while True:
        rc = hbt.wait_next_feed(False, 60_000_000_000)
        if rc == 1:  # end of data
            break
        if rc != FEED:
            continue
        ticks += 1
        trades = hbt.last_trades(0)
        for i in range(len(trades)):
            flow += trades[i].qty if trades[i].ev & BUY_FLAG else -trades[i].qty
        hbt.clear_last_trades(0)
        flow *= 0.99
        depth = hbt.depth(0)
        bid, ask = depth.best_bid, depth.best_ask
        mid = (bid + ask) / 2.0
        if not np.isfinite(mid) or mid <= 0:
            continue
        imbalance = (depth.best_bid_qty - depth.best_ask_qty) / (depth.best_bid_qty + depth.best_ask_qty + 1e-12)
        avg = mid if avg == 0.0 else avg + (mid - avg) * 0.01
        if every <= 0 or ticks % every != 0:
            continue
        hbt.clear_inactive_orders(0)
        position = hbt.position(0)
        bearish = mid < avg or (mid == avg and flow + imbalance < 0)
        orders += 1
        _order(
            hbt, orders, qty if position == 0 else abs(position), position > 0 or (position == 0 and bearish), bid, ask
        )
    return ticks, orders


@njit
def mid_only(hbt, every: int, qty: float):
    """The predecessor's strategy: the mid's average every event, an order every EVERY-th."""
    ticks, orders, avg = 0, 0, 0.0
    while True:
        rc = hbt.wait_next_feed(False, 60_000_000_000)
        if rc == 1:
            break
        if rc != FEED:
            continue
        ticks += 1
        depth = hbt.depth(0)
        mid = (depth.best_bid + depth.best_ask) / 2.0
        if not np.isfinite(mid) or mid <= 0:
            continue
        avg = mid if avg == 0.0 else avg + (mid - avg) * 0.01
        if ticks % every != 0:
            continue
        hbt.clear_inactive_orders(0)
        position = hbt.position(0)
        orders += 1
        _order(hbt, orders, qty, position > 0 or (position == 0 and mid < avg), depth.best_bid, depth.best_ask)
    return ticks, orders


def backtest(data: np.ndarray, spec: dict) -> HashMapMarketDepthBacktest:
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(spec["entry_ns"], spec["response_ns"])
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(spec["maker_fee"], spec["taker_fee"])
        .tick_size(spec["tick"])
        .lot_size(spec["lot"])
        .last_trades_capacity(10_000)
    )
    return HashMapMarketDepthBacktest([asset])


def timed(strategy, data: np.ndarray, spec: dict, every: int) -> dict:
    hbt = backtest(data, spec)
    t0 = time.process_time()
    ticks, orders = strategy(hbt, every, spec["qty"])
    took = time.process_time() - t0
    fills = int(hbt.state_values(0).num_trades)
    hbt.close()
    return {"cpu_s": took, "ticks": int(ticks), "orders": int(orders), "fills": fills, "every": every}


def ordered(raw: np.ndarray, feed_ns: int | None) -> np.ndarray:
    """The rows split so exchange-side and local-side events are each in their own time order; with feed_ns,
    every row reaches the strategy that long after its exchange time (QuantumEdge's constant feed latency)."""
    raw = raw.astype(event_dtype)  # the same fields; np.load drops the aligned flag numba types on
    if feed_ns is not None:
        raw["local_ts"] = raw["exch_ts"] + feed_ns
    by_exch = np.argsort(raw["exch_ts"], kind="stable")
    by_local = np.argsort(raw["local_ts"], kind="stable")
    return correct_event_order(raw, by_exch, by_local)


def every_for(data: np.ndarray, target: int) -> int:
    """The order spacing, in feed events (one per distinct local time: what wait_next_feed wakes on)."""
    if target <= 0:
        return 0
    return max(1, len(np.unique(data["local_ts"])) // target)


def run(strategy, raw: np.ndarray, spec: dict, feed_ns: int | None, every: int | None) -> dict:
    t0 = time.process_time()
    data = ordered(raw, feed_ns)
    prep = time.process_time() - t0
    every = every_for(data, spec["target_orders"]) if every is None else every
    warm = timed(strategy, data[:WARMUP_ROWS].copy(), spec, every)
    return {"rows": len(data), "prep_cpu_s": prep, "warmup_cpu_s": warm["cpu_s"], **timed(strategy, data, spec, every)}


def main(argv: list[str]) -> int:
    src, out, spec = argv[1], argv[2], json.loads(argv[3])
    raw = np.load(src)
    figures = {"modelled": run(per_event, raw, spec, spec["feed_ns"], None)}
    light = {**spec, "entry_ns": 1_000_000, "response_ns": 1_000_000, "maker_fee": 0.0001, "taker_fee": 0.0001}
    figures["light"] = run(mid_only, raw, light, None, 10)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(figures, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
