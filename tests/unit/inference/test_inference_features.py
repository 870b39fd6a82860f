"""One feature definition, two builders: the online (per event) and offline (vectorised) rows are the same."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from quantumedge.inference.domain.features import (
    DEFAULT_CONFIG,
    FEATURE_SCHEMA,
    FeatureConfig,
    OnlineFeatures,
    build_offline,
    canonical_order,
    make_schema,
    regime_of,
)
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.shared import market_files
from quantumedge.v1 import common_pb2, market_pb2

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _online(events, config: FeatureConfig = DEFAULT_CONFIG):
    builder = OnlineFeatures(config)
    rows: dict[str, list] = {}
    for ev in events:
        for row in builder.update(ev):
            rows.setdefault(row.symbol, []).append(row)
    return rows


def _assert_parity(events, config: FeatureConfig = DEFAULT_CONFIG) -> float:
    table = market_files.events_to_table(events)
    ordered = list(market_files.table_to_events(table.take(pa.array(canonical_order(table)))))
    online = _online(ordered, config)
    offline = build_offline(table, config)
    worst = 0.0
    assert set(online) == set(offline)
    for symbol, off in offline.items():
        on = online[symbol]
        assert len(on) == len(off) > 0
        np.testing.assert_array_equal(off.time_ns, [r.time_ns for r in on])
        on_values = np.array([r.values for r in on])
        np.testing.assert_allclose(on_values, off.values, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(off.regime, [r.regime for r in on])
        np.testing.assert_allclose(off.mid, [r.mid for r in on], rtol=0, atol=0)
        worst = max(worst, float(np.max(np.abs(on_values - off.values))))
    print(f"builder parity: max |online - offline| = {worst:.3e} over {sum(len(v) for v in online.values())} rows")
    return worst


def test_online_and_offline_builders_agree_on_the_same_events() -> None:
    events = list(SyntheticMarket(SYMBOLS, seed=3).events(1500))
    assert _assert_parity(events) < 1e-9


def test_builders_agree_across_gaps_and_with_several_books_per_row_bucket() -> None:
    # 250 ms steps with 1 s rows: several top-of-book updates per bucket, only the latest before the
    # boundary is in the row, and every trade of the bucket is folded into it. A gap marker restarts
    # the warm-up (each half is longer than the 120-row warm-up, so both segments make rows).
    events = list(SyntheticMarket(["BTCUSDT"], seed=5, step_ms=250).events(2500))
    cut = len(events) // 2
    gap = market_pb2.MarketEvent(
        symbol="BTCUSDT",
        exchange_time_ns=events[cut].exchange_time_ns,
        source="synthetic",
        gap=market_pb2.GapMarker(stream="depth", reason="test"),
    )
    events.insert(cut, gap)
    _assert_parity(events)
    off = build_offline(market_files.events_to_table(events))["BTCUSDT"]
    assert set(off.segment.tolist()) == {0, 1}


def test_no_row_before_the_warm_up_window_is_full() -> None:
    config = DEFAULT_CONFIG  # 1 s rows on 1 s steps: one candidate row per step
    builder = OnlineFeatures(config)
    tobs = 0
    first_row_at = None
    for ev in SyntheticMarket(["BTCUSDT"], seed=1).events(300):
        rows = builder.update(ev)
        if rows and first_row_at is None:
            first_row_at = tobs
            assert len(rows) == 1 and builder.warmed_up("BTCUSDT")
        if first_row_at is None:
            assert not builder.warmed_up("BTCUSDT")
        if ev.HasField("top_of_book"):
            tobs += 1
    # The first boundary after the first book holds it; candidate rows 0..warmup-1 fill the windows, so
    # the row holding the (warmup + 1)th book is the first one emitted: no earlier row leaks out.
    assert first_row_at == config.warmup_rows + 1


def test_gap_marker_resets_the_symbol_and_restarts_the_warm_up() -> None:
    builder = OnlineFeatures()
    events = list(SyntheticMarket(["BTCUSDT"], seed=2).events(400))
    rows = [builder.update(ev) for ev in events]
    assert any(rows)
    builder.update(market_pb2.MarketEvent(symbol="BTCUSDT", gap=market_pb2.GapMarker(stream="depth")))
    assert not builder.warmed_up("BTCUSDT")
    later = list(SyntheticMarket(["BTCUSDT"], seed=2, start_ns=2_000_000_000_000_000_000).events(120))
    assert all(builder.update(ev) == [] for ev in later)  # 120 fresh steps: still warming up
    assert not builder.warmed_up("BTCUSDT")


def test_rows_without_a_depth_update_are_not_emitted() -> None:
    events = [e for e in SyntheticMarket(["BTCUSDT"], seed=4).events(300) if not e.HasField("depth")]
    assert _online(events) == {}
    assert len(build_offline(market_files.events_to_table(events))["BTCUSDT"]) == 0


def test_regime_is_volatility_by_trend() -> None:
    assert regime_of(0.0, 1.0) == common_pb2.REGIME_LOW_VOL_TREND_UP
    assert regime_of(0.0, -1.0) == common_pb2.REGIME_LOW_VOL_TREND_DOWN
    assert regime_of(0.0, 0.0) == common_pb2.REGIME_LOW_VOL_RANGE
    assert regime_of(1.0, 1.0) == common_pb2.REGIME_HIGH_VOL_TREND_UP
    assert regime_of(1.0, -1.0) == common_pb2.REGIME_HIGH_VOL_TREND_DOWN
    assert regime_of(1.0, 0.0) == common_pb2.REGIME_HIGH_VOL_RANGE


def test_schema_hash_names_the_definition() -> None:
    assert FEATURE_SCHEMA.size == len(FEATURE_SCHEMA.names) == 23
    assert {"trade_flow_ema_slow", "depth_imbalance_ema", "vol_30_bps", "ret_120_bps"} <= set(FEATURE_SCHEMA.names)
    assert make_schema().hash == FEATURE_SCHEMA.hash
    assert make_schema(FeatureConfig(ema_fast=12)).hash != FEATURE_SCHEMA.hash
    with pytest.raises(ValueError, match="warmup_rows"):
        FeatureConfig(warmup_rows=10)
