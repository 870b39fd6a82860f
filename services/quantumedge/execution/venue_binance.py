"""Binance spot testnet and live: one BinanceVenue with different URLs and a different secret; live is only
built when configured explicitly (see venue_setup.build_venue)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from quantumedge.execution.binance import BinanceRestClient, make_signer
from quantumedge.execution.binance_parse import BinanceParser
from quantumedge.execution.domain.filters import SymbolFilters, split_symbol
from quantumedge.execution.domain.orders import (
    ZERO,
    Fill,
    OcoRequest,
    OrderRequest,
    OrderSnapshot,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    dec,
)
from quantumedge.execution.errors import (
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    VenueError,
    VenueRejected,
    VenueUnavailable,
)
from quantumedge.execution.exchange_info import ExchangeInfoCache
from quantumedge.execution.retry import interval_key
from quantumedge.execution.userstream import UserDataStream
from quantumedge.execution.venue_base import ResyncSink, UpdateSink, Venue
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger

# The old module's logger name: operators' log filters keep matching after the split.
log = get_logger("quantumedge.execution.venue")

BINANCE_URLS = {
    "testnet": ("https://testnet.binance.vision", "wss://ws-api.testnet.binance.vision/ws-api/v3"),
    "live": ("https://api.binance.com", "wss://ws-api.binance.com:443/ws-api/v3"),
}
INVALID_SYMBOL = "-1121"


class BinanceVenue(Venue):
    """Binance spot over the signed REST API plus the WebSocket API user data stream."""

    follows_key_rotation = True  # a key rotated in Vault is taken while running (update_credentials)

    def __init__(
        self,
        name: str,
        rest_url: str,
        ws_api_url: str,
        credentials: Mapping[str, str],
        symbols: Iterable[str],
        recv_window_ms: int = 5000,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        max_attempts: int = 4,
        max_wait_s: float = 30.0,
        backoff: Backoff | None = None,
        user_stream: bool = True,
        inline_queries: int = 3,
        exchange_info_ttl_s: float = 3600.0,
        unknown_symbol_ttl_s: float = 300.0,
        avg_price_ttl_s: float = 5.0,
        stream_options: Mapping[str, float] | None = None,
    ) -> None:
        self.name = name
        signer = make_signer(credentials)
        self.rest = BinanceRestClient(
            rest_url,
            credentials["api_key"],
            signer,
            recv_window_ms=recv_window_ms,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_wait_s=max_wait_s,
        )
        self.symbols = list(symbols)
        self.max_attempts = max_attempts
        self.inline_queries = max(1, inline_queries)
        self.backoff = backoff or Backoff()
        self.info = ExchangeInfoCache(exchange_info_ttl_s, unknown_symbol_ttl_s)
        self.avg_price_ttl_s = avg_price_ttl_s
        self._avg: dict[str, tuple[Decimal, float]] = {}
        self.parse = BinanceParser(self._assets)
        self._on_update: UpdateSink | None = None
        self._on_resync: ResyncSink | None = None
        self._stream = (
            UserDataStream(
                ws_api_url,
                credentials["api_key"],
                signer,
                self.rest.server_time_ms,
                self._on_stream_event,
                self._on_stream_connected,
                recv_window_ms=recv_window_ms,
                **(stream_options or {}),
            )
            if user_stream
            else None
        )

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self, on_update: UpdateSink, on_resync: ResyncSink) -> None:
        self._on_update = on_update
        self._on_resync = on_resync
        self.rest.sync_time()
        self.load_exchange_info(self.symbols)
        if self._stream is not None and not self._stream.start():
            log.warning("user data stream not subscribed yet; orders are tracked by REST until it is")

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
        self.rest.close()

    @property
    def connected(self) -> bool:
        return self._stream is None or self._stream.connected.is_set()

    @property
    def stream(self) -> UserDataStream | None:
        return self._stream

    def update_credentials(self, credentials: Mapping[str, str]) -> None:
        """A rotated key: later requests (and the next stream subscription) use it; nothing restarts."""
        signer = make_signer(credentials)
        self.rest.set_credentials(credentials["api_key"], signer)
        if self._stream is not None:
            self._stream.set_credentials(credentials["api_key"], signer)

    # -- exchange info ----------------------------------------------------------------------------
    def load_exchange_info(self, symbols: Iterable[str]) -> None:
        wanted = sorted(set(symbols))
        params = {"symbols": json.dumps(wanted, separators=(",", ":"))} if wanted else {}
        try:
            body = self.rest.request("GET", "/api/v3/exchangeInfo", params, weight=20).body
        except VenueRejected as exc:
            raise VenueRejected(exc.code, f"exchangeInfo for {', '.join(wanted)}: {exc.message}") from None
        self._read_rate_limits(body.get("rateLimits", []))
        self.info.store(SymbolFilters.from_exchange_info(info) for info in body.get("symbols", []))

    def _read_rate_limits(self, limits: Iterable[Mapping[str, Any]]) -> None:
        for limit in limits:
            kind = limit.get("rateLimitType")
            if kind == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                self.rest.limiter.weight_limit_1m = int(limit["limit"]) // max(1, int(limit.get("intervalNum", 1)))
            elif kind == "ORDERS":
                key = interval_key(str(limit.get("interval", "")), int(limit.get("intervalNum", 1)))
                self.rest.limiter.order_limits[key] = int(limit["limit"])

    def filters(self, symbol: str) -> SymbolFilters:
        """The symbol's filters from the cache, asking exchangeInfo only when they expired (or were never
        known). The venue's "Invalid symbol." answer is cached as well, so it is not asked again soon."""
        if self.info.needs_fetch(symbol):
            try:
                self.load_exchange_info([symbol])
            except VenueRejected as exc:
                if exc.code != INVALID_SYMBOL:
                    raise
                self.info.mark_unknown([symbol])
            except VenueError as exc:
                if self.info.cached(symbol) is None:
                    raise
                log.warning("exchange info refresh failed; cached filters stay", extra={"symbol": symbol, "error": exc})
        cached = self.info.cached(symbol)
        if cached is None:
            raise VenueRejected(INVALID_SYMBOL, "Invalid symbol.")
        return cached

    def _assets(self, symbol: str) -> SymbolFilters:
        """Filters to value a fill's commission: cached ones, or the base/quote split of the name."""
        cached = self.info.cached(symbol)
        if cached is not None:
            return cached
        try:
            return self.filters(symbol)
        except VenueError:
            base, quote = split_symbol(symbol)
            return SymbolFilters(symbol, base, quote)

    def average_price(self, symbol: str) -> Decimal:
        """GET /api/v3/avgPrice, kept `avg_price_ttl_s`: what PERCENT_PRICE_BY_SIDE measures against."""
        if self.filters(symbol).percent_price_by_side is None:
            return ZERO
        cached = self._avg.get(symbol)
        now = time.monotonic()
        if cached is not None and now - cached[1] < self.avg_price_ttl_s:
            return cached[0]
        try:
            price = dec(self.rest.request("GET", "/api/v3/avgPrice", {"symbol": symbol}, weight=2).body["price"])
        except (VenueError, KeyError, TypeError, ArithmeticError) as exc:
            log.warning("average price unavailable", extra={"symbol": symbol, "error": str(exc)})
            return cached[0] if cached is not None else ZERO
        self._avg[symbol] = (price, now)
        return price

    def now_ns(self) -> int:
        return self.rest.server_time_ms() * 1_000_000

    def safe_to_forget(self, sent_time_ms: int) -> bool:
        # A copy of the request still in flight is refused by the venue once timestamp + recvWindow passed.
        return self.rest.server_time_ms() > sent_time_ms + self.rest.recv_window_ms + 1000

    # -- orders -----------------------------------------------------------------------------------
    def order_params(self, req: OrderRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "side": req.side.name,
            "quantity": req.quantity,
            "newClientOrderId": req.client_order_id,
            "newOrderRespType": "FULL",
        }
        if req.order_type is OrderType.MARKET and (req.stop_price or req.trailing_stop_bps):
            params["type"] = "STOP_LOSS"
            if req.trailing_stop_bps:
                params["trailingDelta"] = int(req.trailing_stop_bps)
            else:
                params["stopPrice"] = req.stop_price
        elif req.order_type is OrderType.MARKET:
            params["type"] = "MARKET"
        elif req.post_only:
            params.update(type="LIMIT_MAKER", price=req.price)
        else:
            tif = req.time_in_force if req.time_in_force is not TimeInForce.UNSPECIFIED else TimeInForce.GTC
            params.update(type="LIMIT", timeInForce=tif.name, price=req.price)
        return params

    def submit(self, request: OrderRequest) -> list[OrderUpdate]:
        params = self.order_params(request)
        return self._place(
            request.symbol,
            [request.client_order_id],
            lambda: self.rest.request("POST", "/api/v3/order", params, signed=True, orders=1),
            self.parse.placed,
        )

    def oco_params(self, req: OcoRequest) -> dict[str, Any]:
        take_profit = {
            "Type": "LIMIT_MAKER",
            "Price": req.take_profit_price,
            "ClientOrderId": req.take_profit_client_order_id,
        }
        stop_loss: dict[str, Any] = {"Type": "STOP_LOSS", "ClientOrderId": req.stop_loss_client_order_id}
        if req.trailing_stop_bps:
            stop_loss["TrailingDelta"] = int(req.trailing_stop_bps)
        else:
            stop_loss["StopPrice"] = req.stop_loss_price
        # A sell OCO (protecting a long) has the take-profit above the market and the stop below.
        above, below = (take_profit, stop_loss) if req.side is Side.SELL else (stop_loss, take_profit)
        params: dict[str, Any] = {
            "symbol": req.symbol,
            "listClientOrderId": req.list_client_order_id,
            "side": req.side.name,
            "quantity": req.quantity,
            "newOrderRespType": "RESULT",
        }
        params.update({f"above{k}": v for k, v in above.items()})
        params.update({f"below{k}": v for k, v in below.items()})
        return params

    def submit_oco(self, request: OcoRequest) -> list[OrderUpdate]:
        params = self.oco_params(request)
        return self._place(
            request.symbol,
            [request.take_profit_client_order_id, request.stop_loss_client_order_id],
            lambda: self.rest.request("POST", "/api/v3/orderList/oco", params, signed=True, orders=2),
            self.parse.placed,
        )

    def _place(
        self,
        symbol: str,
        client_order_ids: list[str],
        send: Callable[[], Any],
        parse: Callable[[Any], list[OrderUpdate]],
    ) -> list[OrderUpdate]:
        """Send, retrying only what provably did not execute (rate-limited, refused before execution,
        never connected). An unknown outcome is never sent again: the order is looked up by its client
        order id, and when the venue does not show it yet OutcomeUnknown is raised and the engine keeps
        resolving it (user data stream, queries with backoff, trades) until its fate is known.
        """
        attempt = 0
        while True:
            try:
                return parse(send().body)
            except RateLimited as exc:
                if attempt + 1 >= self.max_attempts:
                    raise
                log.warning("order rate-limited; waiting", extra={"code": exc.code, "retry_after_s": exc.retry_after_s})
            except VenueUnavailable:
                if attempt + 1 >= self.max_attempts:
                    raise
                time.sleep(self.backoff.delay(attempt))
            except VenueRejected as exc:
                if exc.message != "Duplicate order sent.":
                    raise
                # Already placed by an earlier life of this service: adopt it.
                return self._resolved_updates(symbol, client_order_ids, note="duplicate client order id: adopted")
            except OutcomeUnknown as exc:
                return self._resolve_unknown(symbol, client_order_ids, exc)
            attempt += 1

    def _resolve_unknown(self, symbol: str, client_order_ids: list[str], exc: OutcomeUnknown) -> list[OrderUpdate]:
        log.warning(
            "order outcome unknown; looking it up, never sending it again",
            extra={"order": client_order_ids[0], "code": exc.code, "error": exc.message},
        )
        for attempt in range(self.inline_queries):
            if attempt:
                time.sleep(self.backoff.delay(attempt - 1))
            try:
                snapshot = self.query(symbol, client_order_ids[0])
            except VenueError as err:
                log.warning("order query failed", extra={"order": client_order_ids[0], "error": str(err)})
                continue
            if snapshot is not None:
                return self._resolved_updates(symbol, client_order_ids, note=f"resolved by query after {exc.code}")
        raise OutcomeUnknown(exc.code, f"{exc.message} (not visible on the venue yet)") from exc

    def _resolved_updates(self, symbol: str, client_order_ids: list[str], note: str) -> list[OrderUpdate]:
        updates: list[OrderUpdate] = []
        for cid in client_order_ids:
            snapshot = self.query(symbol, cid)
            if snapshot is not None:
                updates += self.snapshot_updates(snapshot, note)
        return updates

    def cancel(self, symbol: str, client_order_id: str) -> list[OrderUpdate]:
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        try:
            body = self.rest.request("DELETE", "/api/v3/order", params, signed=True).body
        except OrderNotFound:
            snapshot = self.query(symbol, client_order_id)
            if snapshot is None or snapshot.status.open:
                raise
            return self.snapshot_updates(snapshot, note="cancel found the order already closed")
        # Credited to origClientOrderId (clientOrderId is this cancel's own id); cancelling one leg of an
        # order list cancels the list, and the answer is the list with a report per leg.
        return self.parse.cancelled(body)

    def query(self, symbol: str, client_order_id: str) -> OrderSnapshot | None:
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        try:
            body = self.rest.request("GET", "/api/v3/order", params, signed=True, weight=4).body
        except OrderNotFound:
            return None
        return self.parse.snapshot(body, client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]:
        params = {"symbol": symbol} if symbol else {}
        body = self.rest.request("GET", "/api/v3/openOrders", params, signed=True, weight=6 if symbol else 80).body
        return [self.parse.snapshot(o) for o in body]

    def order_fills(self, snapshot: OrderSnapshot) -> list[Fill]:
        params = {"symbol": snapshot.symbol, "orderId": snapshot.venue_order_id}
        body = self.rest.request("GET", "/api/v3/myTrades", params, signed=True, weight=20).body
        return self.parse.trades(snapshot, body)

    def base_balances(self, symbols: Iterable[str]) -> dict[str, Decimal] | None:
        body = self.rest.request("GET", "/api/v3/account", {"omitZeroBalances": "true"}, signed=True, weight=20).body
        totals = {b["asset"]: dec(b["free"]) + dec(b["locked"]) for b in body.get("balances", [])}
        return {s: totals.get(self._assets(s).base_asset, ZERO) for s in symbols}

    # -- parsing ----------------------------------------------------------------------------------
    def parse_snapshot(self, body: Mapping[str, Any]) -> OrderSnapshot:
        return self.parse.snapshot(body)

    def parse_execution_report(self, e: Mapping[str, Any]) -> OrderUpdate:
        return self.parse.execution_report(e)

    def _on_stream_event(self, event: dict[str, Any]) -> None:
        if event.get("e") != "executionReport" or self._on_update is None:
            return
        self._on_update(self.parse.execution_report(event))

    def _on_stream_connected(self, reconnected: bool) -> None:
        # Events sent while the stream was down are gone: re-query what is open.
        if reconnected and self._on_resync is not None:
            self._on_resync()
