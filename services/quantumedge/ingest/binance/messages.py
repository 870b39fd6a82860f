"""Binance spot market-data payloads: parse and validate JSON into typed values (pure: no I/O).

Formats (Binance spot "WebSocket Streams" and "Market Data endpoints"):
- combined stream envelope: {"stream": "<symbol>@<name>", "data": {...}}
- trade:      {"e": "trade", "E", "s", "t", "p", "q", "T", "m", ...}
- aggTrade:   {"e": "aggTrade", "E", "s", "a", "p", "q", "f", "l", "T", "m", ...}
- bookTicker: {"u", "s", "b", "B", "a", "A"} (spot carries no event time)
- depthUpdate:{"e": "depthUpdate", "E", "s", "U", "u", "b": [[price, qty], ...], "a": [...]}
- snapshot:   {"lastUpdateId", "bids": [[price, qty], ...], "asks": [...]}
- error:      {"code": -1121, "msg": "Invalid symbol."}
- shutdown:   {"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E"}} (raw: just the data), sent
              "when the server is about to shut down": reconnect "as quickly as possible"
Prices and quantities are decimal strings. Anything that does not fit raises MalformedFrameError and is
counted by the caller, never published.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from quantumedge.ingest.binance.book import DepthDiff, DepthSnapshot, Level
from quantumedge.shared.market_kinds import KIND_DEPTH, KIND_TOP_OF_BOOK, KIND_TRADE


class MalformedFrameError(ValueError):
    """A frame or payload that does not match Binance's documented format."""


@dataclass(frozen=True)
class TradeMsg:
    symbol: str
    trade_id: int
    price: float
    quantity: float
    buyer_is_maker: bool
    trade_time_ms: int
    event_time_ms: int


@dataclass(frozen=True)
class BookTickerMsg:
    symbol: str
    update_id: int
    bid_price: float
    bid_quantity: float
    ask_price: float
    ask_quantity: float
    event_time_ms: int  # 0 when the venue does not send one (spot)


@dataclass(frozen=True)
class ApiError:
    code: int
    msg: str


def stream_names(symbol: str, trade_stream: str = "trade", depth_speed_ms: int = 100) -> dict[str, str]:
    """Binance stream name -> our kind, for one symbol (stream names use the lower-case symbol)."""
    sym = symbol.lower()
    depth = f"{sym}@depth@{depth_speed_ms}ms" if depth_speed_ms != 1000 else f"{sym}@depth"
    return {f"{sym}@{trade_stream}": KIND_TRADE, f"{sym}@bookTicker": KIND_TOP_OF_BOOK, depth: KIND_DEPTH}


def parse_envelope(text: str | bytes) -> tuple[str, dict[str, Any]]:
    """Split a combined-stream frame into (stream name, data)."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedFrameError(f"not JSON: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedFrameError("frame is not a JSON object")
    stream, data = obj.get("stream"), obj.get("data")
    if stream == SERVER_SHUTDOWN_STREAM or obj.get("e") == "serverShutdown":
        raise ServerShutdown(obj)
    if not isinstance(stream, str) or not isinstance(data, dict):
        if "code" in obj and "msg" in obj:
            raise VenueError(parse_error(obj))
        if "result" in obj and "id" in obj:
            raise ControlFrame(obj)
        raise MalformedFrameError("frame lacks 'stream' and 'data'")
    return stream, data


class VenueError(Exception):
    """The venue sent an error payload instead of data."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(f"binance error {error.code}: {error.msg}")
        self.error = error


class ControlFrame(Exception):  # noqa: N818 - a signal, not an error
    """A reply to a SUBSCRIBE/UNSUBSCRIBE request ({"result": ..., "id": ...}): not market data."""


class ServerShutdown(ControlFrame):
    """The venue's `serverShutdown` event: this connection is about to be closed."""


SERVER_SHUTDOWN_STREAM = "!serverShutdown"


def parse_error(obj: dict[str, Any]) -> ApiError:
    try:
        return ApiError(int(obj["code"]), str(obj["msg"]))
    except (KeyError, TypeError, ValueError):
        raise MalformedFrameError("error payload without integer 'code' and 'msg'") from None


def _num(data: dict[str, Any], key: str, positive: bool = False) -> float:
    raw = data.get(key)
    if not isinstance(raw, str | int | float) or isinstance(raw, bool):
        raise MalformedFrameError(f"field {key!r} missing or not a number")
    try:
        value = float(raw)
    except ValueError:
        raise MalformedFrameError(f"field {key!r} is not a number: {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise MalformedFrameError(f"field {key!r} out of range: {raw!r}")
    return value


def _int(data: dict[str, Any], key: str, required: bool = True) -> int:
    raw = data.get(key)
    if raw is None and not required:
        return 0
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise MalformedFrameError(f"field {key!r} missing or not an integer")
    return raw


def _symbol(data: dict[str, Any], expected: str) -> str:
    sym = data.get("s")
    if sym != expected:
        raise MalformedFrameError(f"symbol {sym!r} does not match the stream's {expected!r}")
    return sym


def _event_type(data: dict[str, Any], expected: str) -> None:
    if data.get("e") != expected:
        raise MalformedFrameError(f"event type {data.get('e')!r}, expected {expected!r}")


def parse_trade(data: dict[str, Any], symbol: str) -> TradeMsg:
    """A `trade` or `aggTrade` event (the id is "t" for trades and "a" for aggregate trades)."""
    kind = data.get("e")
    if kind not in ("trade", "aggTrade"):
        raise MalformedFrameError(f"event type {kind!r}, expected 'trade' or 'aggTrade'")
    maker = data.get("m")
    if not isinstance(maker, bool):
        raise MalformedFrameError("field 'm' missing or not a boolean")
    return TradeMsg(
        symbol=_symbol(data, symbol),
        trade_id=_int(data, "t" if kind == "trade" else "a"),
        price=_num(data, "p", positive=True),
        quantity=_num(data, "q", positive=True),
        buyer_is_maker=maker,
        trade_time_ms=_int(data, "T"),
        event_time_ms=_int(data, "E"),
    )


def parse_book_ticker(data: dict[str, Any], symbol: str) -> BookTickerMsg:
    msg = BookTickerMsg(
        symbol=_symbol(data, symbol),
        update_id=_int(data, "u"),
        bid_price=_num(data, "b"),
        bid_quantity=_num(data, "B"),
        ask_price=_num(data, "a"),
        ask_quantity=_num(data, "A"),
        event_time_ms=_int(data, "E", required=False),
    )
    if msg.bid_price and msg.ask_price and msg.bid_price > msg.ask_price:
        raise MalformedFrameError(f"crossed book ticker: bid {msg.bid_price} > ask {msg.ask_price}")
    return msg


def _levels(raw: Any, key: str) -> list[Level]:
    if not isinstance(raw, list):
        raise MalformedFrameError(f"field {key!r} missing or not a list")
    out: list[Level] = []
    for item in raw:
        if not isinstance(item, list | tuple) or len(item) < 2:
            raise MalformedFrameError(f"field {key!r} holds a level that is not [price, quantity]")
        level = {"p": item[0], "q": item[1]}
        out.append((_num(level, "p", positive=True), _num(level, "q")))
    return out


def parse_depth(data: dict[str, Any], symbol: str) -> DepthDiff:
    _event_type(data, "depthUpdate")
    first, final = _int(data, "U"), _int(data, "u")
    if final < first:
        raise MalformedFrameError(f"final update id u={final} < first update id U={first}")
    return DepthDiff(
        symbol=_symbol(data, symbol),
        first_update_id=first,
        final_update_id=final,
        bids=_levels(data.get("b"), "b"),
        asks=_levels(data.get("a"), "a"),
        event_time_ms=_int(data, "E"),
    )


def parse_snapshot(obj: Any) -> DepthSnapshot:
    if not isinstance(obj, dict):
        raise MalformedFrameError("snapshot is not a JSON object")
    if "code" in obj and "msg" in obj:
        raise VenueError(parse_error(obj))
    return DepthSnapshot(
        last_update_id=_int(obj, "lastUpdateId"),
        bids=_levels(obj.get("bids"), "bids"),
        asks=_levels(obj.get("asks"), "asks"),
    )
