"""The hftbacktest side of `make bench-compare`; runs inside .cache/bench-compare/venv and never imports quantumedge.

    hbt_run.py EVENTS.npy OUT.json [EVERY]

A per-tick strategy with market orders: on every feed event the strategy wakes; every EVERY-th one it reads
the book's mid against a slow average of it (the signal) and, flat, sends an IOC market order the signal's
way, or, holding, one that closes. The run is timed in CPU seconds (time.process_time) after a warm-up run
on the first rows has compiled the numba code; the warm-up's CPU seconds are reported on their own."""

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


@njit
def per_tick(hbt, every: int, qty: float):
    """(feed events seen, orders sent, fills): the strategy loop over the whole data."""
    ticks, orders, avg, order_id = 0, 0, 0.0, 0
    while True:
        rc = hbt.wait_next_feed(False, 60_000_000_000)
        if rc == 1:  # end of data
            break
        if rc != 2:
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
        order_id += 1
        if position > 0 or (position == 0 and mid < avg):
            hbt.submit_sell_order(0, order_id, depth.best_bid, qty, IOC, MARKET, False)
        else:
            hbt.submit_buy_order(0, order_id, depth.best_ask, qty, IOC, MARKET, False)
        orders += 1
    return ticks, orders


def backtest(data: np.ndarray) -> HashMapMarketDepthBacktest:
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(1_000_000, 1_000_000)
        .risk_adverse_queue_model()
        .no_partial_fill_exchange()
        .trading_value_fee_model(0.0001, 0.0001)
        .tick_size(0.01)
        .lot_size(0.00001)
    )
    return HashMapMarketDepthBacktest([asset])


def timed(data: np.ndarray, every: int) -> dict:
    hbt = backtest(data)
    t0 = time.process_time()
    ticks, orders = per_tick(hbt, every, 0.001)
    took = time.process_time() - t0
    trades = float(hbt.state_values(0).num_trades)
    hbt.close()
    return {"cpu_s": took, "ticks": int(ticks), "orders": int(orders), "fills": trades}


def ordered(raw: np.ndarray) -> np.ndarray:
    """The rows split so exchange-side and local-side events are each in their own time order."""
    raw = raw.astype(event_dtype)  # the same fields; np.load drops the aligned flag numba types on
    by_exch = np.argsort(raw["exch_ts"], kind="stable")
    by_local = np.argsort(raw["local_ts"], kind="stable")
    return correct_event_order(raw, by_exch, by_local)


def main(argv: list[str]) -> int:
    src, out = argv[1], argv[2]
    every = int(argv[3]) if len(argv) > 3 else 10
    t0 = time.process_time()
    data = ordered(np.load(src))
    prep = time.process_time() - t0
    warm = timed(data[:WARMUP_ROWS].copy(), every)
    run = timed(data, every)
    figures = {"rows": len(data), "prep_cpu_s": prep, "warmup_cpu_s": warm["cpu_s"], **run, "every": every}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(figures, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
