"""Parsing Binance's documented payloads, and refusing what does not match them."""

from __future__ import annotations

import json

import pytest

from quantumedge.ingest.binance.client import BinanceSource, combined_stream_url
from quantumedge.ingest.binance.messages import (
    ControlFrame,
    MalformedFrameError,
    VenueError,
    parse_book_ticker,
    parse_depth,
    parse_envelope,
    parse_snapshot,
    parse_trade,
    stream_names,
)
from quantumedge.ingest.settings import IngestSettings
from quantumedge.shared.backoff import Backoff

# Examples in the shape of Binance's spot documentation.
TRADE = {
    "e": "trade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "t": 12345,
    "p": "0.001",
    "q": "100",
    "T": 1672515782136,
    "m": True,
    "M": True,
}
AGG = {
    "e": "aggTrade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "a": 12345,
    "p": "0.001",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 1672515782136,
    "m": False,
    "M": True,
}
TICKER = {"u": 400900217, "s": "BNBUSDT", "b": "25.35190000", "B": "31.21000000", "a": "25.36520000", "A": "40.66"}
DEPTH = {
    "e": "depthUpdate",
    "E": 1672515782136,
    "s": "BNBBTC",
    "U": 157,
    "u": 160,
    "b": [["0.0024", "10"]],
    "a": [["0.0026", "100"]],
}


def test_combined_stream_envelope() -> None:
    stream, data = parse_envelope(json.dumps({"stream": "bnbbtc@trade", "data": TRADE}))
    assert stream == "bnbbtc@trade" and data == TRADE


@pytest.mark.parametrize(
    "frame", ["{oops", "[1]", '{"data": {}}', '{"stream": "x", "data": 3}', b"\xff\xfe", "[" * 100_000]
)
def test_envelope_rejects_malformed_frames(frame: str | bytes) -> None:
    with pytest.raises(MalformedFrameError):
        parse_envelope(frame)


def test_error_payload_and_subscription_replies_are_told_apart() -> None:
    with pytest.raises(VenueError) as err:
        parse_envelope('{"code": -1121, "msg": "Invalid symbol."}')
    assert err.value.error.code == -1121
    with pytest.raises(ControlFrame):
        parse_envelope('{"result": null, "id": 1}')


def test_trade_and_agg_trade() -> None:
    trade = parse_trade(TRADE, "BNBBTC")
    assert (trade.trade_id, trade.price, trade.quantity, trade.buyer_is_maker) == (12345, 0.001, 100.0, True)
    agg = parse_trade(AGG, "BNBBTC")
    assert agg.trade_id == 12345 and not agg.buyer_is_maker


@pytest.mark.parametrize(
    "change",
    [{"p": "abc"}, {"p": "-1"}, {"q": "nan"}, {"p": "0"}, {"t": "12"}, {"m": "yes"}, {"s": "ETHBTC"}, {"e": "kline"}],
)
def test_trade_rejects_bad_fields(change: dict) -> None:
    with pytest.raises(MalformedFrameError):
        parse_trade({**TRADE, **change}, "BNBBTC")


def test_book_ticker_has_no_event_time_on_spot() -> None:
    msg = parse_book_ticker(TICKER, "BNBUSDT")
    assert (msg.update_id, msg.bid_price, msg.ask_quantity, msg.event_time_ms) == (400900217, 25.3519, 40.66, 0)
    with pytest.raises(MalformedFrameError):
        parse_book_ticker({**TICKER, "b": "30"}, "BNBUSDT")  # crossed


def test_depth_update_and_snapshot() -> None:
    d = parse_depth(DEPTH, "BNBBTC")
    assert (d.first_update_id, d.final_update_id, d.bids, d.asks) == (157, 160, [(0.0024, 10.0)], [(0.0026, 100.0)])
    with pytest.raises(MalformedFrameError):
        parse_depth({**DEPTH, "U": 161}, "BNBBTC")  # u < U
    with pytest.raises(MalformedFrameError):
        parse_depth({**DEPTH, "b": [["0.0024"]]}, "BNBBTC")
    snap = parse_snapshot({"lastUpdateId": 1027024, "bids": [["4.00000000", "431.00000000"]], "asks": []})
    assert snap.last_update_id == 1027024 and snap.bids == [(4.0, 431.0)]
    with pytest.raises(VenueError):
        parse_snapshot({"code": -1121, "msg": "Invalid symbol."})


def test_stream_names_and_url() -> None:
    names = stream_names("BTCUSDT")
    assert names == {"btcusdt@trade": "trade", "btcusdt@bookTicker": "top_of_book", "btcusdt@depth@100ms": "depth"}
    assert "btcusdt@aggTrade" in stream_names("BTCUSDT", trade_stream="aggTrade")
    for base in ("wss://stream.binance.com:9443", "wss://stream.binance.com:9443/stream", "wss://x:1/ws/"):
        url = combined_stream_url(base, ["a@trade", "b@trade"])
        assert url.endswith("/stream?streams=a@trade/b@trade") and "/ws" not in url


def test_backoff_grows_with_jitter_and_resets() -> None:
    import random

    backoff = Backoff(0.5, 4.0, random.Random(3))
    delays = [backoff.next_delay() for _ in range(6)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_one_connection_carries_at_most_1024_streams() -> None:
    assert BinanceSource(IngestSettings(), [f"S{i}USDT" for i in range(341)]).url.count("@") == 341 * 3 + 341
    with pytest.raises(ValueError, match="1024"):
        BinanceSource(IngestSettings(), [f"S{i}USDT" for i in range(342)])


def test_venue_switch_picks_the_endpoints() -> None:
    testnet = BinanceSource(IngestSettings(venue="testnet"), ["BTCUSDT"])
    assert testnet.name == "binance-testnet"
    assert testnet.url.startswith("wss://stream.testnet.binance.vision/stream?streams=")
    assert testnet.rest_base == "https://testnet.binance.vision"
    live = BinanceSource(IngestSettings(), ["BTCUSDT"])
    assert (live.name, live.rest_base) == ("binance", "https://api.binance.com")
