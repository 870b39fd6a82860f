"""One Venue interface, three venues: paper (the fill simulator), Binance spot testnet and Binance spot live.

Testnet and live are the same BinanceVenue with different URLs and a different secret; live is only
built when configured explicitly (see service.build_venue). Every method returns the order updates it
learned, so the engine has one path for what the venue says, whether from a response, a query or the
user data stream.
"""

from __future__ import annotations

import abc
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from quantumedge.execution.binance import BinanceRestClient, make_signer
from quantumedge.execution.errors import (
    OrderNotFound,
    OutcomeUnknown,
    RateLimited,
    VenueError,
    VenueRejected,
    VenueUnavailable,
)
from quantumedge.execution.filters import SymbolFilters
from quantumedge.execution.orders import (
    ZERO,
    Fill,
    OcoRequest,
    Order,
    OrderRequest,
    OrderSnapshot,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    dec,
    value_fee,
)
from quantumedge.execution.paper import FillSimulator, PaperConfig
from quantumedge.execution.userstream import UserDataStream
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.logs import get_logger
from quantumedge.v1 import market_pb2

if TYPE_CHECKING:
    from quantumedge.shared.config import Settings

log = get_logger(__name__)

UpdateSink = Callable[[OrderUpdate], None]
ResyncSink = Callable[[], None]


class Venue(abc.ABC):
    name: str = ""
    # True when the venue keeps no state of its own across restarts (paper): the engine re-inserts orders.
    stateless: bool = False

    def start(self, on_update: UpdateSink, on_resync: ResyncSink) -> None:  # noqa: B027 - optional hook
        """Connect (time sync, exchange info, user data stream). Updates arriving later go to on_update."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        pass

    @abc.abstractmethod
    def filters(self, symbol: str) -> SymbolFilters: ...

    @abc.abstractmethod
    def submit(self, request: OrderRequest) -> list[OrderUpdate]:
        """Place one order; VenueRejected when refused; OutcomeUnknown when it could not be resolved."""

    @abc.abstractmethod
    def submit_oco(self, request: OcoRequest) -> list[OrderUpdate]: ...

    @abc.abstractmethod
    def cancel(self, symbol: str, client_order_id: str) -> list[OrderUpdate]:
        """Cancel one order (an OCO leg cancels its list); OrderNotFound when it is not open there."""

    @abc.abstractmethod
    def query(self, symbol: str, client_order_id: str) -> OrderSnapshot | None: ...

    @abc.abstractmethod
    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]: ...

    def order_fills(self, snapshot: OrderSnapshot) -> list[Fill]:
        """Every fill of an order (to recover fills missed while down)."""
        return []

    def snapshot_updates(self, snapshot: OrderSnapshot, note: str = "") -> list[OrderUpdate]:
        """Updates that bring a local order to the snapshot: its fills (from myTrades), then its status."""
        updates: list[OrderUpdate] = []
        if snapshot.executed_quantity > 0:
            cum = ZERO
            try:
                fills = self.order_fills(snapshot)
            except VenueError as exc:
                # The status update below carries the cumulative quantity: the engine catches up from it.
                log.warning(
                    "order fills unavailable; catching up from the cumulative quantity",
                    extra={"order": snapshot.client_order_id, "error": str(exc)},
                )
                fills = []
            for fill in fills:
                cum += fill.quantity
                status = OrderStatus.FILLED if cum >= snapshot.quantity else OrderStatus.PARTIALLY_FILLED
                updates.append(
                    OrderUpdate(
                        snapshot.client_order_id, snapshot.symbol, status, snapshot.venue_order_id, fill, fill.time_ns
                    )
                )
        updates.append(
            OrderUpdate(
                snapshot.client_order_id,
                snapshot.symbol,
                snapshot.status,
                snapshot.venue_order_id,
                time_ns=snapshot.time_ns,
                executed_quantity=snapshot.executed_quantity,
                executed_quote=snapshot.executed_quote,
                note=note,
            )
        )
        return updates

    def base_balances(self, symbols: Iterable[str]) -> dict[str, Decimal] | None:
        """Total base-asset balance per symbol, or None for a venue whose positions are ours alone (paper)."""
        return None

    def on_market(self, event: market_pb2.MarketEvent) -> list[OrderUpdate]:
        return []

    def advance(self, now_ns: int) -> list[OrderUpdate]:
        """A simulated venue's clock moves to now_ns (orders in flight arrive); real venues keep their own."""
        return []

    def now_ns(self) -> int:
        return time.time_ns()

    def safe_to_forget(self, sent_time_ms: int) -> bool:
        """True once a request signed at sent_time_ms can no longer be executed (its recvWindow passed)."""
        return True

    def restore(self, order: Order) -> None:  # noqa: B027 - only stateless venues need it
        """Re-insert an order that was open before a restart (stateless venues only)."""

    @property
    def connected(self) -> bool:
        return True


# -- paper ----------------------------------------------------------------------------------------
class PaperVenue(Venue):
    name = "paper"
    stateless = True

    def __init__(self, config: PaperConfig | None = None, filters_for: Callable[[str], SymbolFilters] | None = None):
        self.sim = FillSimulator(config)
        self._filters_for = filters_for or SymbolFilters.simple
        self._filters: dict[str, SymbolFilters] = {}

    def filters(self, symbol: str) -> SymbolFilters:
        if symbol not in self._filters:
            self._filters[symbol] = self._filters_for(symbol)
        return self._filters[symbol]

    def submit(self, request: OrderRequest) -> list[OrderUpdate]:
        return self.sim.submit(request)

    def submit_oco(self, request: OcoRequest) -> list[OrderUpdate]:
        return self.sim.submit_oco(request)

    def cancel(self, symbol: str, client_order_id: str) -> list[OrderUpdate]:
        return self.sim.cancel(client_order_id)

    def query(self, symbol: str, client_order_id: str) -> OrderSnapshot | None:
        return self.sim.query(client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]:
        return self.sim.open_orders(symbol)

    def on_market(self, event: market_pb2.MarketEvent) -> list[OrderUpdate]:
        return self.sim.on_market(event)

    def advance(self, now_ns: int) -> list[OrderUpdate]:
        return self.sim.advance(now_ns)

    def now_ns(self) -> int:
        return self.sim.now_ns

    def restore(self, order: Order) -> None:
        self.sim.restore(OrderRequest.of(order), order.filled_quantity, order.filled_quote, order.group_id)


def paper_venue(settings: Settings) -> PaperVenue:
    """The paper venue with the fee, latency, queue, slippage and filter model of `settings.execution`."""
    cfg = settings.execution
    config = PaperConfig(
        maker_fee_bps=Decimal(repr(cfg.paper_maker_fee_bps)),
        taker_fee_bps=Decimal(repr(cfg.paper_taker_fee_bps)),
        latency_ns=int(cfg.paper_latency_ms * 1_000_000),
        slippage_bps=Decimal(repr(cfg.paper_slippage_bps)),
        queue_position=cfg.paper_queue_position,
        fee_asset=cfg.paper_fee_asset,
        bnb_discount=Decimal(repr(cfg.paper_bnb_discount)),
        bnb_price=Decimal(repr(cfg.paper_bnb_price)),
    )
    return PaperVenue(
        config,
        lambda symbol: SymbolFilters.simple(symbol, cfg.paper_tick_size, cfg.paper_step_size, cfg.paper_min_notional),
    )


# -- Binance spot ---------------------------------------------------------------------------------
BINANCE_URLS = {
    "testnet": ("https://testnet.binance.vision", "wss://ws-api.testnet.binance.vision/ws-api/v3"),
    "live": ("https://api.binance.com", "wss://ws-api.binance.com:443/ws-api/v3"),
}

STATUS = {
    "NEW": OrderStatus.NEW,
    "PENDING_NEW": OrderStatus.NEW,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED,
    "PENDING_CANCEL": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
TIF = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}


def _ms_to_ns(ms: Any) -> int:
    try:
        return int(ms) * 1_000_000
    except (TypeError, ValueError):
        return 0


class BinanceVenue(Venue):
    """Binance spot over the signed REST API plus the WebSocket API user data stream."""

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
        self.backoff = backoff or Backoff()
        self._filters: dict[str, SymbolFilters] = {}
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
            )
            if user_stream
            else None
        )
        self._lock = threading.Lock()

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

    def update_credentials(self, credentials: Mapping[str, str]) -> None:
        """A rotated key: later requests (and the next stream subscription) use it; nothing restarts."""
        signer = make_signer(credentials)
        self.rest.set_credentials(credentials["api_key"], signer)
        if self._stream is not None:
            self._stream.set_credentials(credentials["api_key"], signer)

    def load_exchange_info(self, symbols: Iterable[str]) -> None:
        wanted = sorted(set(symbols))
        params = {"symbols": json.dumps(wanted, separators=(",", ":"))} if wanted else {}
        try:
            body = self.rest.request("GET", "/api/v3/exchangeInfo", params, weight=20).body
        except VenueRejected as exc:
            raise VenueRejected(exc.code, f"exchangeInfo for {', '.join(wanted)}: {exc.message}") from None
        for limit in body.get("rateLimits", []):
            if limit.get("rateLimitType") == "REQUEST_WEIGHT" and limit.get("interval") == "MINUTE":
                self.rest.limiter.weight_limit_1m = int(limit["limit"]) // max(1, int(limit.get("intervalNum", 1)))
        for info in body.get("symbols", []):
            self._filters[info["symbol"]] = SymbolFilters.from_exchange_info(info)

    def filters(self, symbol: str) -> SymbolFilters:
        if symbol not in self._filters:
            self.load_exchange_info([symbol])
        if symbol not in self._filters:
            raise VenueRejected("-1121", "Invalid symbol.")
        return self._filters[symbol]

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
            lambda: self.rest.request("POST", "/api/v3/order", params, signed=True),
            lambda body: self._order_response_updates(body),
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
            lambda: self.rest.request("POST", "/api/v3/orderList/oco", params, signed=True),
            lambda body: [u for r in body.get("orderReports", []) for u in self._order_response_updates(r)],
        )

    def _place(
        self,
        symbol: str,
        client_order_ids: list[str],
        send: Callable[[], Any],
        parse: Callable[[Any], list[OrderUpdate]],
    ) -> list[OrderUpdate]:
        """Send with idempotency: an unknown outcome is resolved by querying before any retry.

        Retries are safe because the client order id is fixed and a retry happens only when the venue
        definitely does not have the order (rate-limited, never connected, or absent after recvWindow).
        """
        attempt = 0
        while True:
            sent_ms = self.rest.server_time_ms()
            try:
                return parse(send().body)
            except RateLimited as exc:
                if attempt + 1 >= self.max_attempts:
                    raise
                log.warning("order rate-limited; waiting", extra={"retry_after_s": exc.retry_after_s})
            except VenueUnavailable:
                if attempt + 1 >= self.max_attempts:
                    raise
                time.sleep(self.backoff.delay(attempt))
            except VenueRejected as exc:
                if exc.message != "Duplicate order sent.":
                    raise
                # Already placed by an earlier attempt (or an earlier life of this service): adopt it.
                return self._resolved_updates(symbol, client_order_ids, note="duplicate client order id: adopted")
            except OutcomeUnknown as exc:
                log.warning("order outcome unknown; querying before any retry", extra={"error": str(exc)})
                found = self._resolve(symbol, client_order_ids[0], sent_ms)
                if found is not None:
                    return self._resolved_updates(symbol, client_order_ids, note="resolved by query after timeout")
                if attempt + 1 >= self.max_attempts:
                    raise VenueUnavailable("not-placed", f"not placed after {attempt + 1} attempts: {exc}") from exc
                time.sleep(self.backoff.delay(attempt))
            attempt += 1

    def _resolve(self, symbol: str, client_order_id: str, sent_ms: int) -> OrderSnapshot | None:
        """The order if the venue has it; None once it provably never will (recvWindow passed)."""
        for attempt in range(self.max_attempts * 3):
            try:
                snapshot = self.query(symbol, client_order_id)
            except (OutcomeUnknown, VenueUnavailable, RateLimited) as exc:
                log.warning("order query failed; backing off", extra={"error": str(exc)})
                time.sleep(self.backoff.delay(attempt))
                continue
            if snapshot is not None:
                return snapshot
            if self.safe_to_forget(sent_ms):
                return None
            wait_ms = sent_ms + self.rest.recv_window_ms + 1000 - self.rest.server_time_ms()
            time.sleep(min(max(wait_ms, 50), 2000) / 1000)
        raise OutcomeUnknown("unresolved", f"order {client_order_id}: venue could not be queried")

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
        # Cancelling one OCO leg cancels the list; Binance answers with the list's reports then.
        reports = body.get("orderReports") if isinstance(body, dict) and "orderReports" in body else [body]
        return [u for r in reports for u in self._order_response_updates(r)]

    def query(self, symbol: str, client_order_id: str) -> OrderSnapshot | None:
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        try:
            body = self.rest.request("GET", "/api/v3/order", params, signed=True, weight=4).body
        except OrderNotFound:
            return None
        return self.parse_snapshot(body)

    def open_orders(self, symbol: str | None = None) -> list[OrderSnapshot]:
        params = {"symbol": symbol} if symbol else {}
        body = self.rest.request("GET", "/api/v3/openOrders", params, signed=True, weight=6 if symbol else 80).body
        return [self.parse_snapshot(o) for o in body]

    def order_fills(self, snapshot: OrderSnapshot) -> list[Fill]:
        params = {"symbol": snapshot.symbol, "orderId": snapshot.venue_order_id}
        body = self.rest.request("GET", "/api/v3/myTrades", params, signed=True, weight=20).body
        out = []
        for t in body:
            price, qty = dec(t["price"]), dec(t["qty"])
            out.append(
                self._fill(
                    snapshot.symbol,
                    snapshot.client_order_id,
                    str(t["id"]),
                    price,
                    qty,
                    dec(t.get("commission", "0")),
                    t.get("commissionAsset") or "",
                    bool(t.get("isMaker")),
                    _ms_to_ns(t.get("time")),
                )
            )
        return out

    def base_balances(self, symbols: Iterable[str]) -> dict[str, Decimal] | None:
        body = self.rest.request("GET", "/api/v3/account", {"omitZeroBalances": "true"}, signed=True, weight=20).body
        totals = {b["asset"]: dec(b["free"]) + dec(b["locked"]) for b in body.get("balances", [])}
        return {s: totals.get(self.filters(s).base_asset, ZERO) for s in symbols}

    # -- parsing ----------------------------------------------------------------------------------
    def parse_snapshot(self, body: Mapping[str, Any]) -> OrderSnapshot:
        kind = body.get("type", "MARKET")
        order_type = (
            OrderType.LIMIT
            if kind in ("LIMIT", "LIMIT_MAKER", "TAKE_PROFIT_LIMIT", "STOP_LOSS_LIMIT")
            else OrderType.MARKET
        )
        list_id = body.get("orderListId", -1)
        return OrderSnapshot(
            client_order_id=body["clientOrderId"],
            symbol=body["symbol"],
            side=Side[body["side"]],
            order_type=order_type,
            status=STATUS.get(body["status"], OrderStatus.NEW),
            quantity=dec(body["origQty"]),
            executed_quantity=dec(body.get("executedQty", "0")),
            executed_quote=dec(body.get("cummulativeQuoteQty", "0")),
            price=dec(body.get("price", "0")),
            stop_price=dec(body.get("stopPrice", "0")),
            time_in_force=TIF.get(body.get("timeInForce", ""), TimeInForce.UNSPECIFIED),
            venue_order_id=str(body.get("orderId", "")),
            group_id=str(list_id) if list_id not in (-1, None) else "",
            time_ns=_ms_to_ns(body.get("updateTime") or body.get("transactTime") or body.get("time")),
        )

    def _order_response_updates(self, body: Mapping[str, Any]) -> list[OrderUpdate]:
        """Updates from a POST/DELETE order answer (FULL carries the fills with their trade ids).

        A cancel's answer names the order in origClientOrderId; its clientOrderId is the cancel request's own.
        """
        cid = body.get("origClientOrderId") or body.get("clientOrderId") or ""
        symbol = body["symbol"]
        oid = str(body.get("orderId", ""))
        time_ns = _ms_to_ns(body.get("transactTime"))
        orig = dec(body.get("origQty", "0"))
        updates = []
        cum = ZERO
        for f in body.get("fills", []):
            price, qty = dec(f["price"]), dec(f["qty"])
            cum += qty
            fill = self._fill(
                symbol,
                cid,
                str(f["tradeId"]),
                price,
                qty,
                dec(f.get("commission", "0")),
                f.get("commissionAsset") or "",
                False,
                time_ns,
            )
            status = OrderStatus.FILLED if orig and cum >= orig else OrderStatus.PARTIALLY_FILLED
            updates.append(OrderUpdate(cid, symbol, status, oid, fill, time_ns))
        updates.append(
            OrderUpdate(
                cid,
                symbol,
                STATUS.get(body.get("status", ""), OrderStatus.NEW),
                oid,
                time_ns=time_ns,
                executed_quantity=dec(body.get("executedQty", "0")),
                executed_quote=dec(body.get("cummulativeQuoteQty", "0")),
            )
        )
        return updates

    def _fill(
        self,
        symbol: str,
        cid: str,
        trade_id: str,
        price: Decimal,
        qty: Decimal,
        commission: Decimal,
        commission_asset: str,
        maker: bool,
        time_ns: int,
    ) -> Fill:
        f = self.filters(symbol)
        fee_quote, base_fee = value_fee(commission, commission_asset, price, f.base_asset, f.quote_asset)
        return Fill(cid, trade_id, price, qty, commission, commission_asset, fee_quote, base_fee, maker, time_ns)

    def parse_execution_report(self, e: Mapping[str, Any]) -> OrderUpdate:
        """A user-data-stream executionReport as an update. On a cancel, `C` holds the original id."""
        cid = e.get("C") or e.get("c") or ""
        symbol = e["s"]
        time_ns = _ms_to_ns(e.get("T") or e.get("E"))
        fill = None
        if e.get("x") == "TRADE" and dec(e.get("l", "0")) > 0:
            fill = self._fill(
                symbol,
                cid,
                str(e["t"]),
                dec(e["L"]),
                dec(e["l"]),
                dec(e.get("n") or "0"),
                e.get("N") or "",
                bool(e.get("m")),
                time_ns,
            )
        reject = e.get("r") or ""
        return OrderUpdate(
            client_order_id=cid,
            symbol=symbol,
            status=STATUS.get(e.get("X", ""), OrderStatus.NEW),
            venue_order_id=str(e.get("i", "")),
            fill=fill,
            time_ns=time_ns,
            reject_code=reject if reject != "NONE" else "",
            executed_quantity=dec(e.get("z", "0")),
            executed_quote=dec(e.get("Z", "0")),
        )

    def _on_stream_event(self, event: dict[str, Any]) -> None:
        if event.get("e") != "executionReport" or self._on_update is None:
            return
        self._on_update(self.parse_execution_report(event))

    def _on_stream_connected(self, reconnected: bool) -> None:
        # Events sent while the stream was down are gone: re-query what is open.
        if reconnected and self._on_resync is not None:
            self._on_resync()
