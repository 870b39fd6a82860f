"""A local Binance spot trading peer: signed REST API + WebSocket API user data stream.

Implements, from Binance's documentation, the endpoints the execution service uses:
  GET  /api/v3/time, /api/v3/exchangeInfo, /api/v3/order, /api/v3/openOrders, /api/v3/account, /api/v3/myTrades
  POST /api/v3/order, /api/v3/orderList/oco          DELETE /api/v3/order, /api/v3/orderList
  WS   /ws-api/v3 method userDataStream.subscribe.signature -> {"subscriptionId", "event": executionReport ...}
It verifies HMAC-SHA256 (hex) and Ed25519 (base64) signatures over the exact query string, the
timestamp against recvWindow, and answers with the documented errors: -1021 timestamp, -1022
signature, -2015 bad key, -2010 new order rejected (duplicate, balance, LIMIT_MAKER, OCO prices),
-2011 cancel rejected, -2013 no such order, -1013 filter failure, -1003 too many requests (429, then
418 with Retry-After). It keeps balances (commission 0.1%: buys pay in the base asset, sells in the
quote asset, as Binance does without BNB), a book per symbol that tests set, resting limits, stop-loss
(trailing too) and OCO lists whose legs cancel each other.

Misbehaviour on command: split fills, delay, accept-then-hang (the client times out after the order is
placed), lose a request (hang without accepting), rate limits and bans, dropped user data streams.
Nothing moves by itself: tests drive prices with set_book()/trade(). Both servers bind 127.0.0.1 with
OS-chosen ports.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

from tests.peers.binance_rules import EIGHT, AveragePrices, OrderCounter, SymbolSpec, filter_failure
from tests.peers.binance_rules import ApiError as ApiError
from tests.peers.binance_rules import fmt8 as _s

D = Decimal
OPEN = ("NEW", "PARTIALLY_FILLED")
TIMEOUT_MSG = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


@dataclass
class PeerOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal = Decimal(0)
    stop_price: Decimal = Decimal(0)
    trailing_delta: int = 0
    time_in_force: str = "GTC"
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    cum_quote: Decimal = Decimal(0)
    order_list_id: int = -1
    time_ms: int = 0
    update_ms: int = 0
    triggered: bool = False
    peak: Decimal = Decimal(0)
    locked_asset: str = ""
    locked: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN


@dataclass
class PeerTrade:
    symbol: str
    trade_id: int
    order_id: int
    order_list_id: int
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    is_buyer: bool
    is_maker: bool


@dataclass
class OrderList:
    list_id: int
    list_client_order_id: str
    symbol: str
    order_ids: list[int]
    status: str = "EXECUTING"


@dataclass
class _Faults:
    hang_after_accept: int = 0
    lose_requests: int = 0
    hold_s: float = 30.0
    rate_limit: int = 0
    ban: int = 0
    retry_after_s: int = 1
    delay_s: float = 0.0
    split_fills: int = 1
    refuse_streams: bool = False
    # -1007 answered at once, the order executed by the matching engine `late_after_s` later.
    late_execute: int = 0
    late_after_s: float = 1.0
    late_status: int = 408
    order_rate_limit: int = 0


@dataclass
class _Subscriber:
    connection: ServerConnection
    subscription_id: int
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _WsConnection:
    connection: ServerConnection
    lock: threading.Lock
    opened: float
    closing: bool = False
    # Stopped delivering events and answering requests (TCP and websocket pings still alive).
    stalled: bool = False


class BinanceTradingPeer:
    def __init__(
        self,
        symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT"),
        api_key: str = "peer-api-key",
        api_secret: str | None = "peer-api-secret",  # noqa: S107 - the peer's own test key
        ed25519_public_pem: bytes | None = None,
        balances: Mapping[str, str | Decimal] | None = None,
        commission: str = "0.001",
        server_time_offset_ms: int = 0,
        weight_limit_1m: int = 6000,
        order_limits: Mapping[str, int] | None = None,
        max_connection_age_s: float = 24 * 3600,
    ) -> None:
        self.specs = {s: SymbolSpec(s, s[:-4], s[-4:]) for s in symbols}
        self.order_counter = OrderCounter(order_limits or {"10S": 100, "1D": 200_000})
        self.averages = AveragePrices()
        # Binance: "A single connection ... is only valid for 24 hours": the peer cuts older ones.
        self.max_connection_age_s = max_connection_age_s
        self.api_key = api_key
        self._secret = api_secret.encode() if api_secret else None
        self._ed_public = None
        if ed25519_public_pem:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            self._ed_public = load_pem_public_key(ed25519_public_pem)
        self.commission = D(commission)
        self.server_time_offset_ms = server_time_offset_ms
        self.weight_limit_1m = weight_limit_1m
        start = {"USDT": D("100000"), **{spec.base: D(0) for spec in self.specs.values()}}
        start.update({k: D(str(v)) for k, v in (balances or {}).items()})
        self.free: dict[str, Decimal] = dict(start)
        self.locked: dict[str, Decimal] = dict.fromkeys(start, D(0))
        self.bids: dict[str, list[tuple[Decimal, Decimal]]] = {s: [] for s in self.specs}
        self.asks: dict[str, list[tuple[Decimal, Decimal]]] = {s: [] for s in self.specs}
        self.last_price: dict[str, Decimal] = dict.fromkeys(self.specs, D(0))
        self.orders: dict[int, PeerOrder] = {}
        self.lists: dict[int, OrderList] = {}
        self.trades: list[PeerTrade] = []
        self.faults = _Faults()
        # What arrived, for assertions: every POST /api/v3/order by client order id, and every request path.
        self.order_requests: dict[str, int] = {}
        self.accepted: dict[str, int] = {}
        self.requests: list[tuple[str, str, int]] = []
        # Every HTTP request that reached the peer, whatever its path or outcome (observe-only expects 0).
        self.http_requests_total = 0
        self.statuses: Counter[int] = Counter()
        self._ids = itertools.count(1001)
        self._list_ids = itertools.count(1)
        self._trade_ids = itertools.count(50001)
        self._sub_ids = itertools.count(0)
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._weight_minute = -1
        self._weight_used = 0
        self._limited_until = 0.0
        self._banned_until = 0.0
        self._subscribers: list[_Subscriber] = []
        self._ws_connections: list[_WsConnection] = []
        self.ws_connections_total = 0
        self._timers: list[threading.Timer] = []
        self._stopping = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._ws: Any = None
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> BinanceTradingPeer:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                peer._serve(self, "GET")

            def do_POST(self) -> None:
                peer._serve(self, "POST")

            def do_DELETE(self) -> None:
                peer._serve(self, "DELETE")

            def do_PUT(self) -> None:
                peer._serve(self, "PUT")

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._ws = serve(self._ws_handler, "127.0.0.1", 0)
        for target in (self._http.serve_forever, self._ws.serve_forever, self._cut_old_connections):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        for timer in list(self._timers):
            timer.cancel()
        self.drop_user_streams()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._ws is not None:
            self._ws.shutdown()

    def __enter__(self) -> BinanceTradingPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        assert self._http is not None
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._ws.socket.getsockname()[1]}/ws-api/v3"

    def server_time_ms(self) -> int:
        return int(time.time() * 1000) + self.server_time_offset_ms

    # -- test controls ----------------------------------------------------------------------------
    def set_book(self, symbol: str, bids: Iterable[tuple[str, str]], asks: Iterable[tuple[str, str]]) -> None:
        """Replace the book (best first); resting orders the new book crosses fill as makers."""
        with self._lock:
            self.bids[symbol] = [(D(p), D(q)) for p, q in bids]
            self.asks[symbol] = [(D(p), D(q)) for p, q in asks]
            if self.bids[symbol] and self.asks[symbol] and not self.last_price[symbol]:
                self.last_price[symbol] = (self.bids[symbol][0][0] + self.asks[symbol][0][0]) / 2
            self._match_resting(symbol, None)

    def trade(self, symbol: str, price: str, qty: str = "1000") -> None:
        """A trade by others at `price`: resting limits it passes through fill; stops trigger."""
        with self._lock:
            self.last_price[symbol] = D(price)
            self.averages.add(symbol, time.time(), D(price), D(qty))
            self._match_resting(symbol, (D(price), D(qty)))

    def hang_next_orders(self, count: int = 1, hold_s: float = 30.0) -> None:
        """Accept the next `count` new orders, then hold the HTTP answer (the client times out)."""
        self.faults.hang_after_accept, self.faults.hold_s = count, hold_s

    def lose_next_orders(self, count: int = 1, hold_s: float = 30.0) -> None:
        """Hold the next `count` new-order requests without executing them (lost in transit)."""
        self.faults.lose_requests, self.faults.hold_s = count, hold_s

    def rate_limit_next(self, count: int = 1, retry_after_s: int = 1) -> None:
        self.faults.rate_limit, self.faults.retry_after_s = count, retry_after_s

    def ban_next(self, count: int = 1, retry_after_s: int = 1) -> None:
        self.faults.ban, self.faults.retry_after_s = count, retry_after_s

    def lift_ban(self) -> None:
        with self._lock:
            self._banned_until = self._limited_until = 0.0
            self.faults.ban = self.faults.rate_limit = 0

    def split_fills(self, parts: int) -> None:
        """Each taker fill is reported as `parts` trades."""
        self.faults.split_fills = max(1, parts)

    def delay(self, seconds: float) -> None:
        self.faults.delay_s = seconds

    def release(self) -> None:
        """Let held requests answer now (their clients are usually gone)."""
        self._release.set()

    def drop_user_streams(self, refuse_new: bool = False) -> int:
        """Close every user-data-stream connection; events while they are down are lost (as on Binance)."""
        self.faults.refuse_streams = refuse_new
        with self._lock:
            subs, self._subscribers = self._subscribers, []
        for sub in subs:
            with contextlib.suppress(Exception):
                sub.connection.close(1001, "going away")
        return len(subs)

    def allow_streams(self) -> None:
        self.faults.refuse_streams = False

    def late_execute_next(self, count: int = 1, after_s: float = 1.0, http_status: int = 408) -> None:
        """Answer the next `count` new orders with -1007 TIMEOUT at once, and let the matching engine
        execute each `after_s` later (Binance: -1007 "does not always mean that the request failed")."""
        self.faults.late_execute, self.faults.late_after_s, self.faults.late_status = count, after_s, http_status

    def order_rate_limit_next(self, count: int = 1) -> None:
        """Refuse the next `count` new orders with -1015 TOO_MANY_ORDERS (the account's order rate)."""
        self.faults.order_rate_limit = count

    def send_server_shutdown(self, close_after_s: float | None = 1.0) -> int:
        """WebSocket API "Server Shutdown" connection event on every open connection, which the server
        then closes after `close_after_s` (None: leave them open). Returns how many got it."""
        event = json.dumps({"event": {"e": "serverShutdown", "E": self.server_time_ms()}})
        with self._lock:
            targets = [c for c in self._ws_connections if not c.closing]
            for conn in targets:
                conn.closing = close_after_s is not None
        for conn in targets:
            with contextlib.suppress(Exception), conn.lock:
                conn.connection.send(event)
        if close_after_s is not None:
            self._later(close_after_s, lambda: self._close_ws([c.connection for c in targets], 1001, "server shutdown"))
        return len(targets)

    def stall_user_streams(self) -> int:
        """The connections open now stop delivering events and answering requests (their events are
        lost); TCP and websocket pings stay up, and new connections work. Returns how many stalled."""
        with self._lock:
            for conn in self._ws_connections:
                conn.stalled = True
            return len(self._ws_connections)

    def _stalled(self, connection: ServerConnection) -> bool:
        with self._lock:
            return any(c.stalled for c in self._ws_connections if c.connection is connection)

    @property
    def ws_connection_count(self) -> int:
        with self._lock:
            return len(self._ws_connections)

    def _later(self, delay_s: float, action: Any) -> None:
        timer = threading.Timer(delay_s, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _close_ws(self, connections: list[ServerConnection], code: int, reason: str) -> None:
        for connection in connections:
            with contextlib.suppress(Exception):
                connection.close(code, reason)

    def _cut_old_connections(self) -> None:
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            with self._lock:
                old = [c for c in self._ws_connections if now - c.opened >= self.max_connection_age_s]
            self._close_ws([c.connection for c in old], 1000, "connection age limit")

    @property
    def stream_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def balance(self, asset: str) -> Decimal:
        with self._lock:
            return self.free.get(asset, D(0)) + self.locked.get(asset, D(0))

    def open_orders(self, symbol: str | None = None) -> list[PeerOrder]:
        with self._lock:
            return [o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)]

    def order_by_client_id(self, client_order_id: str) -> PeerOrder | None:
        with self._lock:
            found = [o for o in self.orders.values() if o.client_order_id == client_order_id]
            return found[-1] if found else None

    # -- HTTP -------------------------------------------------------------------------------------
    ROUTES: dict[tuple[str, str], tuple[str, str, int]] = {
        ("GET", "/api/v3/ping"): ("_ping", "NONE", 1),
        ("GET", "/api/v3/time"): ("_time", "NONE", 1),
        ("GET", "/api/v3/exchangeInfo"): ("_exchange_info", "NONE", 20),
        ("GET", "/api/v3/avgPrice"): ("_avg_price", "NONE", 2),
        ("POST", "/api/v3/order"): ("_new_order", "TRADE", 1),
        ("GET", "/api/v3/order"): ("_query_order", "USER_DATA", 4),
        ("DELETE", "/api/v3/order"): ("_cancel_order", "TRADE", 1),
        ("POST", "/api/v3/orderList/oco"): ("_new_oco", "TRADE", 1),
        ("DELETE", "/api/v3/orderList"): ("_cancel_list", "TRADE", 1),
        ("GET", "/api/v3/openOrders"): ("_open_orders", "USER_DATA", 6),
        ("GET", "/api/v3/account"): ("_account", "USER_DATA", 20),
        ("GET", "/api/v3/myTrades"): ("_my_trades", "USER_DATA", 20),
    }

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        with self._lock:
            self.http_requests_total += 1
        url = urlparse(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        raw = "&".join(p for p in (url.query, body) if p)
        route = self.ROUTES.get((method, url.path))
        weight = route[2] if route else 1
        try:
            if self.faults.delay_s:
                time.sleep(self.faults.delay_s)
            self._check_limits(weight)
            if route is None:
                raise ApiError(404, -1, f"no such endpoint {method} {url.path}")
            name, security, _ = route
            params = dict(parse_qsl(raw, keep_blank_values=True))
            with self._lock:
                self.requests.append((method, url.path, weight))
            if security != "NONE":
                self._authenticate(handler, raw, params)
            status, payload = 200, getattr(self, name)(params, handler)
        except ApiError as exc:
            status, payload = exc.http_status, {"code": exc.code, "msg": exc.msg}
            extra = exc.headers
        else:
            extra = {}
            if route is not None and route[0] in ("_new_order", "_new_oco"):
                # "Every successful order response will contain a X-MBX-ORDER-COUNT-(intervalNum)(intervalLetter)".
                counts = self.order_counter.counts(self.server_time_ms() / 1000)
                extra = {f"X-MBX-ORDER-COUNT-{key}": str(n) for key, n in counts.items()}
        data = json.dumps(payload).encode()
        with self._lock:
            self.statuses[status] += 1
        with contextlib.suppress(OSError):
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json;charset=UTF-8")
            handler.send_header("Content-Length", str(len(data)))
            handler.send_header("X-MBX-USED-WEIGHT-1M", str(self._weight_used))
            for key, value in extra.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)

    def _check_limits(self, weight: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now < self._banned_until or self.faults.ban:
                if self.faults.ban:
                    self.faults.ban -= 1
                    self._banned_until = now + self.faults.retry_after_s
                retry = max(1, int(self._banned_until - now + 0.999))
                raise ApiError(418, -1003, "Way too many requests; IP banned.", {"Retry-After": str(retry)})
            if now < self._limited_until:
                # Not backing off after a 429 earns a ban (Binance escalates to 418).
                self._banned_until = now + 2 * self.faults.retry_after_s
                raise ApiError(
                    418, -1003, "Way too many requests; IP banned.", {"Retry-After": str(2 * self.faults.retry_after_s)}
                )
            minute = int(time.time() // 60)
            if minute != self._weight_minute:
                self._weight_minute, self._weight_used = minute, 0
            self._weight_used += weight
            if self.faults.rate_limit or self._weight_used > self.weight_limit_1m:
                if self.faults.rate_limit:
                    self.faults.rate_limit -= 1
                self._limited_until = now + self.faults.retry_after_s
                raise ApiError(
                    429,
                    -1003,
                    "Too many requests; current limit of IP(127.0.0.1) request weight per 1 MINUTE is "
                    f"{self.weight_limit_1m}.",
                    {"Retry-After": str(self.faults.retry_after_s)},
                )

    def _authenticate(self, handler: BaseHTTPRequestHandler, raw: str, params: Mapping[str, str]) -> None:
        if handler.headers.get("X-MBX-APIKEY") != self.api_key:
            raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        parts = raw.split("&")
        signature = next((p.split("=", 1)[1] for p in parts if p.startswith("signature=")), "")
        payload = "&".join(p for p in parts if not p.startswith("signature="))
        self._verify(payload, signature, params)

    def _verify(self, payload: str, signature: str, params: Mapping[str, Any]) -> None:
        if not self._signature_ok(payload, signature):
            raise ApiError(400, -1022, "Signature for this request is not valid.")
        try:
            timestamp = int(params.get("timestamp", ""))
        except ValueError:
            raise ApiError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            ) from None
        recv_window = int(params.get("recvWindow") or 5000)
        if recv_window > 60000:
            raise ApiError(400, -1131, "recvWindow must be less than 60000")
        server_time = self.server_time_ms()
        if timestamp >= server_time + 1000 or server_time - timestamp > recv_window:
            raise ApiError(400, -1021, "Timestamp for this request is outside of the recvWindow.")

    def _signature_ok(self, payload: str, signature: str) -> bool:
        from urllib.parse import unquote

        if not signature:
            return False
        if self._secret is not None:
            expected = hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, signature.lower()):
                return True
        if self._ed_public is not None:
            try:
                self._ed_public.verify(base64.b64decode(unquote(signature)), payload.encode())
                return True
            except Exception:
                return False
        return False

    # -- endpoints --------------------------------------------------------------------------------
    def _ping(self, params: Mapping[str, str], handler: Any) -> dict:
        return {}

    def _time(self, params: Mapping[str, str], handler: Any) -> dict:
        return {"serverTime": self.server_time_ms()}

    def _exchange_info(self, params: Mapping[str, str], handler: Any) -> dict:
        wanted = set(self.specs)
        if params.get("symbol"):
            wanted = {params["symbol"]}
        elif params.get("symbols"):
            wanted = set(json.loads(params["symbols"]))
        unknown = wanted - set(self.specs)
        if unknown:
            raise ApiError(400, -1121, "Invalid symbol.")
        return {
            "timezone": "UTC",
            "serverTime": self.server_time_ms(),
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit_1m,
                },
                *self.order_counter.rate_limits_json(),
            ],
            "exchangeFilters": [],
            "symbols": [self._symbol_info(self.specs[s]) for s in sorted(wanted)],
        }

    @staticmethod
    def _symbol_info(spec: SymbolSpec) -> dict:
        return {
            "symbol": spec.symbol,
            "status": "TRADING",
            "baseAsset": spec.base,
            "baseAssetPrecision": 8,
            "quoteAsset": spec.quote,
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "orderTypes": [
                "LIMIT",
                "LIMIT_MAKER",
                "MARKET",
                "STOP_LOSS",
                "STOP_LOSS_LIMIT",
                "TAKE_PROFIT",
                "TAKE_PROFIT_LIMIT",
            ],
            "ocoAllowed": True,
            "otoAllowed": True,
            "isSpotTradingAllowed": True,
            "filters": spec.filters_json(),
            "permissions": [],
            "permissionSets": [["SPOT"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }

    def _avg_price(self, params: Mapping[str, str], handler: Any) -> dict:
        symbol = params.get("symbol", "")
        spec = self.specs.get(symbol)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        return {
            "mins": spec.avg_price_mins,
            "price": _s(self._average(symbol)),
            "closeTime": self.server_time_ms(),
        }

    def _average(self, symbol: str) -> Decimal:
        spec = self.specs[symbol]
        return self.averages.price(symbol, spec.avg_price_mins, time.time(), self.last_price[symbol])

    def _admit_orders(self, count: int) -> None:
        """The account's ORDERS rate limits (a command can make the next ones fail too)."""
        with self._lock:
            if self.faults.order_rate_limit:
                self.faults.order_rate_limit -= 1
                raise ApiError(
                    429, -1015, "Too many new orders; current limit is 100 orders per 10 SECOND.", {"Retry-After": "1"}
                )
        self.order_counter.admit(count, self.server_time_ms() / 1000)

    def _new_order(self, params: Mapping[str, str], handler: Any) -> dict:
        cid = params.get("newClientOrderId") or f"peer{next(self._ids)}"
        with self._lock:
            self.order_requests[cid] = self.order_requests.get(cid, 0) + 1
        self._admit_orders(1)
        with self._lock:
            lose = self.faults.lose_requests > 0
            if lose:
                self.faults.lose_requests -= 1
            late = not lose and self.faults.late_execute > 0
            if late:
                self.faults.late_execute -= 1
        if lose:
            self._release.wait(self.faults.hold_s)
            raise ApiError(503, -1007, TIMEOUT_MSG)
        if late:
            # The API gave up waiting; the matching engine executes the order afterwards.
            self._later(self.faults.late_after_s, lambda: self._execute_late(dict(params), cid))
            raise ApiError(self.faults.late_status, -1007, TIMEOUT_MSG)
        with self._lock:
            order = self._place(params, cid)
            self.accepted[cid] = self.accepted.get(cid, 0) + 1
            response = self._order_json(order, full=True)
            hang = self.faults.hang_after_accept > 0
            if hang:
                self.faults.hang_after_accept -= 1
        if hang:
            self._release.wait(self.faults.hold_s)
        return response

    def _execute_late(self, params: dict[str, str], cid: str) -> None:
        with self._lock:
            try:
                self._place(params, cid)
            except ApiError:
                return  # refused by the matching engine: the order never existed
            self.accepted[cid] = self.accepted.get(cid, 0) + 1

    def _place(self, params: Mapping[str, str], cid: str, list_id: int = -1, lock: bool = True) -> PeerOrder:
        order = self._validate(params, cid, list_id)
        if lock:
            self._lock_funds(order, self.specs[order.symbol])
        return self._activate(order)

    def _validate(self, params: Mapping[str, str], cid: str, list_id: int = -1, extra_algo: int = 0) -> PeerOrder:
        """The order a request describes, checked against the symbol's filters (nothing changes yet)."""
        symbol = params.get("symbol", "")
        spec = self.specs.get(symbol)
        if spec is None:
            raise ApiError(400, -1121, "Invalid symbol.")
        if any(o.client_order_id == cid and o.is_open for o in self.orders.values()):
            raise ApiError(400, -2010, "Duplicate order sent.")
        side, kind = params.get("side", ""), params.get("type", "")
        if side not in ("BUY", "SELL"):
            raise ApiError(400, -1102, "Mandatory parameter 'side' was not sent, was empty/null, or malformed.")
        if kind not in ("MARKET", "LIMIT", "LIMIT_MAKER", "STOP_LOSS"):
            raise ApiError(400, -1116, "Invalid orderType.")
        try:
            quantity = D(params["quantity"])
        except (KeyError, ArithmeticError):
            raise ApiError(
                400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."
            ) from None
        price = D(params.get("price") or "0")
        stop = D(params.get("stopPrice") or "0")
        trailing = int(params.get("trailingDelta") or 0)
        if kind in ("LIMIT", "LIMIT_MAKER") and price <= 0:
            raise ApiError(400, -1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
        if kind == "STOP_LOSS" and stop <= 0 and not trailing:
            raise ApiError(400, -1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, or malformed.")
        spec.check_price(price)
        spec.check_price(stop)
        if quantity < spec.min_qty or (quantity % spec.step) != 0:
            raise filter_failure("LOT_SIZE")
        ref = price or stop or self._touch(symbol, side) or self.last_price[symbol]
        if ref and ref * quantity < spec.min_notional:
            raise filter_failure("NOTIONAL")
        spec.check_band(side, price, self._average(symbol))
        open_here = [o for o in self.orders.values() if o.symbol == symbol and o.is_open]
        if len(open_here) >= spec.max_num_orders:
            raise filter_failure("MAX_NUM_ORDERS")
        if kind == "STOP_LOSS":
            spec.check_trailing(side, trailing)
            algo = sum(1 for o in open_here if o.type == "STOP_LOSS") + extra_algo
            if algo >= spec.max_num_algo_orders:
                raise filter_failure("MAX_NUM_ALGO_ORDERS")
        if kind == "LIMIT_MAKER" and self._crosses(symbol, side, price):
            raise ApiError(400, -2010, "Order would immediately match and take.")
        now = self.server_time_ms()
        return PeerOrder(
            symbol,
            next(self._ids),
            cid,
            side,
            kind,
            quantity,
            price,
            stop,
            trailing,
            params.get("timeInForce", "GTC") if kind == "LIMIT" else "GTC",
            order_list_id=list_id,
            time_ms=now,
            update_ms=now,
        )

    def _activate(self, order: PeerOrder) -> PeerOrder:
        """The matching engine takes the order: it exists, is reported, and trades if it can."""
        self.orders[order.order_id] = order
        self._event(order, "NEW")
        if order.type == "MARKET":
            self._take(order, None)
        elif order.type == "LIMIT":
            self._take(order, order.price)
        elif order.type == "STOP_LOSS":
            order.peak = self.last_price[order.symbol]
        return order

    def _lock_funds(self, order: PeerOrder, spec: SymbolSpec) -> None:
        if order.side == "SELL":
            asset, amount = spec.base, order.quantity
        else:
            ref = order.price or self._walk_cost(order.symbol, order.quantity) or order.stop_price
            asset, amount = spec.quote, (ref * order.quantity).quantize(EIGHT)
        if self.free.get(asset, D(0)) < amount:
            raise ApiError(400, -2010, "Account has insufficient balance for requested action.")
        self.free[asset] -= amount
        self.locked[asset] = self.locked.get(asset, D(0)) + amount
        order.locked_asset, order.locked = asset, amount

    def _unlock(self, order: PeerOrder, amount: Decimal | None = None) -> None:
        amount = order.locked if amount is None else min(amount, order.locked)
        if amount <= 0:
            return
        order.locked -= amount
        self.locked[order.locked_asset] -= amount
        self.free[order.locked_asset] += amount

    def _query_order(self, params: Mapping[str, str], handler: Any) -> dict:
        with self._lock:
            return self._order_json(self._find(params))

    def _find(self, params: Mapping[str, str]) -> PeerOrder:
        symbol = params.get("symbol", "")
        if "orderId" in params:
            order = self.orders.get(int(params["orderId"]))
        elif "origClientOrderId" in params:
            found = [
                o
                for o in self.orders.values()
                if o.client_order_id == params["origClientOrderId"] and o.symbol == symbol
            ]
            order = found[-1] if found else None
        else:
            raise ApiError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!")
        if order is None or order.symbol != symbol:
            raise ApiError(400, -2013, "Order does not exist.")
        return order

    def _cancel_order(self, params: Mapping[str, str], handler: Any) -> dict:
        with self._lock:
            try:
                order = self._find(params)
            except ApiError:
                raise ApiError(400, -2011, "Unknown order sent.") from None
            if not order.is_open:
                raise ApiError(400, -2011, "Unknown order sent.")
            cancel_id = params.get("newClientOrderId") or f"cancel{next(self._ids)}"
            if order.order_list_id != -1:
                # "If you cancel an order that is a part of an order list, the entire order list is canceled",
                # and the answer is the order list's.
                return self._cancel_whole_list(self.lists[order.order_list_id], cancel_id)
            self._close(order, "CANCELED", cancel_id)
            return self._cancel_report(order, cancel_id)

    def _cancel_report(self, order: PeerOrder, cancel_id: str) -> dict:
        """A cancelled order as Binance reports it: `origClientOrderId` is the order's own id,
        `clientOrderId` the cancel request's (newClientOrderId, or one generated)."""
        answer = self._order_json(order)
        for key in ("time", "updateTime", "isWorking", "workingTime", "icebergQty"):
            answer.pop(key, None)
        answer.update(
            origClientOrderId=order.client_order_id, clientOrderId=cancel_id, transactTime=self.server_time_ms()
        )
        return {"symbol": answer.pop("symbol"), "origClientOrderId": answer.pop("origClientOrderId"), **answer}

    def _cancel_whole_list(self, lst: OrderList, cancel_id: str) -> dict:
        legs = [self.orders[o] for o in lst.order_ids]
        for leg in legs:
            if leg.is_open:
                self._close(leg, "CANCELED", cancel_id)
        self._list_done(lst.list_id)
        return {
            "orderListId": lst.list_id,
            "contingencyType": "OCO",
            "listStatusType": "ALL_DONE",
            "listOrderStatus": "ALL_DONE",
            "listClientOrderId": lst.list_client_order_id,
            "transactionTime": self.server_time_ms(),
            "symbol": lst.symbol,
            "orders": [{"symbol": lst.symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id} for o in legs],
            "orderReports": [self._cancel_report(o, cancel_id) for o in legs],
        }

    def _new_oco(self, params: Mapping[str, str], handler: Any) -> dict:
        with self._lock:
            symbol, side = params.get("symbol", ""), params.get("side", "")
            spec = self.specs.get(symbol)
            if spec is None:
                raise ApiError(400, -1121, "Invalid symbol.")
            list_cid = params.get("listClientOrderId") or f"list{next(self._list_ids)}"
            if any(lst.list_client_order_id == list_cid and lst.status == "EXECUTING" for lst in self.lists.values()):
                raise ApiError(400, -2010, "Duplicate order sent.")
            open_lists = sum(1 for lst in self.lists.values() if lst.symbol == symbol and lst.status == "EXECUTING")
            if spec.max_num_order_lists and open_lists >= spec.max_num_order_lists:
                raise filter_failure("MAX_NUM_ORDER_LISTS")
            above = {k[5:]: v for k, v in params.items() if k.startswith("above")}
            below = {k[5:]: v for k, v in params.items() if k.startswith("below")}
            last = self.last_price[symbol]
            limit_leg, stop_leg = (above, below) if side == "SELL" else (below, above)
            if limit_leg.get("Type") != "LIMIT_MAKER" or stop_leg.get("Type") != "STOP_LOSS":
                raise ApiError(400, -1116, "Invalid orderType.")
            tp = D(limit_leg.get("Price") or "0")
            sl = D(stop_leg.get("StopPrice") or "0")
            trailing = int(stop_leg.get("TrailingDelta") or 0)
            ok = (tp > last and (trailing or last > sl)) if side == "SELL" else (tp < last and (trailing or last < sl))
            if not ok:
                raise ApiError(400, -2010, "The relationship of the prices for the orders is not correct.")
            list_id = next(self._list_ids)
            # Both legs pass the filters before either exists: the list is accepted or refused as a whole.
            legs = [
                self._validate(self._leg_params(symbol, side, params["quantity"], leg, kind), cid, list_id)
                for leg, kind, cid in (
                    (limit_leg, "LIMIT_MAKER", limit_leg.get("ClientOrderId") or f"leg{next(self._ids)}"),
                    (stop_leg, "STOP_LOSS", stop_leg.get("ClientOrderId") or f"leg{next(self._ids)}"),
                )
            ]
            self._admit_orders(2)
            # The list reserves its quantity once (one of the legs will execute): carried by the first leg,
            # released by whichever closes last.
            self._lock_funds(legs[0], spec)
            self.lists[list_id] = OrderList(list_id, list_cid, symbol, [o.order_id for o in legs])
            for leg in legs:
                self._activate(leg)
            self._list_status(self.lists[list_id], "EXEC_STARTED")
            return {
                "orderListId": list_id,
                "contingencyType": "OCO",
                "listStatusType": "EXEC_STARTED",
                "listOrderStatus": "EXECUTING",
                "listClientOrderId": list_cid,
                "transactionTime": self.server_time_ms(),
                "symbol": symbol,
                "orders": [{"symbol": symbol, "orderId": o.order_id, "clientOrderId": o.client_order_id} for o in legs],
                "orderReports": [self._order_json(o) for o in legs],
            }

    @staticmethod
    def _leg_params(symbol: str, side: str, quantity: str, leg: Mapping[str, str], kind: str) -> dict[str, str]:
        out = {"symbol": symbol, "side": side, "type": kind, "quantity": quantity}
        if kind == "LIMIT_MAKER":
            out["price"] = leg.get("Price", "0")
        else:
            out["stopPrice"] = leg.get("StopPrice", "")
            out["trailingDelta"] = leg.get("TrailingDelta", "")
        return out

    def _cancel_list(self, params: Mapping[str, str], handler: Any) -> dict:
        with self._lock:
            found = [
                lst
                for lst in self.lists.values()
                if lst.symbol == params.get("symbol")
                and (
                    str(lst.list_id) == params.get("orderListId")
                    or lst.list_client_order_id == params.get("listClientOrderId")
                )
            ]
            if not found or found[-1].status != "EXECUTING":
                raise ApiError(400, -2011, "Order list does not exist.")
            return self._cancel_whole_list(found[-1], params.get("newClientOrderId") or f"cancel{next(self._ids)}")

    def _open_orders(self, params: Mapping[str, str], handler: Any) -> list:
        with self._lock:
            symbol = params.get("symbol")
            return [
                self._order_json(o) for o in self.orders.values() if o.is_open and (not symbol or o.symbol == symbol)
            ]

    def _account(self, params: Mapping[str, str], handler: Any) -> dict:
        with self._lock:
            omit = params.get("omitZeroBalances") == "true"
            balances = [
                {"asset": a, "free": _s(self.free[a]), "locked": _s(self.locked.get(a, D(0)))}
                for a in sorted(self.free)
                if not omit or self.free[a] or self.locked.get(a)
            ]
            return {
                "makerCommission": 10,
                "takerCommission": 10,
                "buyerCommission": 0,
                "sellerCommission": 0,
                "commissionRates": {
                    "maker": _s(self.commission),
                    "taker": _s(self.commission),
                    "buyer": "0.00000000",
                    "seller": "0.00000000",
                },
                "canTrade": True,
                "canWithdraw": True,
                "canDeposit": True,
                "brokered": False,
                "requireSelfTradePrevention": False,
                "preventSor": False,
                "updateTime": self.server_time_ms(),
                "accountType": "SPOT",
                "balances": balances,
                "permissions": ["SPOT"],
                "uid": 354937868,
            }

    def _my_trades(self, params: Mapping[str, str], handler: Any) -> list:
        with self._lock:
            symbol = params.get("symbol", "")
            order_id = int(params["orderId"]) if params.get("orderId") else None
            return [
                {
                    "symbol": t.symbol,
                    "id": t.trade_id,
                    "orderId": t.order_id,
                    "orderListId": t.order_list_id,
                    "price": _s(t.price),
                    "qty": _s(t.qty),
                    "quoteQty": _s(t.price * t.qty),
                    "commission": _s(t.commission),
                    "commissionAsset": t.commission_asset,
                    "time": t.time_ms,
                    "isBuyer": t.is_buyer,
                    "isMaker": t.is_maker,
                    "isBestMatch": True,
                }
                for t in self.trades
                if t.symbol == symbol and (order_id is None or t.order_id == order_id)
            ]

    # -- matching ---------------------------------------------------------------------------------
    def _touch(self, symbol: str, side: str) -> Decimal:
        levels = self.asks[symbol] if side == "BUY" else self.bids[symbol]
        return levels[0][0] if levels else D(0)

    def _crosses(self, symbol: str, side: str, price: Decimal) -> bool:
        touch = self._touch(symbol, side)
        return bool(touch) and (touch <= price if side == "BUY" else touch >= price)

    def _walk_cost(self, symbol: str, quantity: Decimal) -> Decimal:
        """Average price a market buy of `quantity` would pay (to reserve quote funds)."""
        left, cost = quantity, D(0)
        for price, qty in self.asks[symbol]:
            take = min(left, qty)
            cost += take * price
            left -= take
            if left <= 0:
                break
        return (cost / (quantity - left)) if quantity > left else D(0)

    def _take(self, order: PeerOrder, limit: Decimal | None) -> None:
        """Taker execution against the book (MARKET, crossing LIMIT, triggered STOP_LOSS)."""
        levels = self.asks[order.symbol] if order.side == "BUY" else self.bids[order.symbol]
        if order.time_in_force == "FOK" and limit is not None:
            available = sum((q for p, q in levels if (p <= limit if order.side == "BUY" else p >= limit)), D(0))
            if available < order.quantity:
                self._close(order, "EXPIRED")
                return
        fills: list[tuple[Decimal, Decimal]] = []
        remaining = order.remaining
        new_levels = []
        for price, qty in levels:
            if remaining > 0 and (limit is None or (price <= limit if order.side == "BUY" else price >= limit)):
                take = min(remaining, qty)
                fills.append((price, take))
                remaining -= take
                if qty - take > 0:
                    new_levels.append((price, qty - take))
            else:
                new_levels.append((price, qty))
        levels[:] = new_levels
        for price, qty in fills:
            for part in self._split(qty, self.specs[order.symbol].step):
                self._fill(order, price, part, maker=False)
        takes_only = order.type in ("MARKET", "STOP_LOSS") or order.time_in_force in ("IOC", "FOK")
        if order.remaining > 0 and order.is_open and takes_only:
            self._close(order, "EXPIRED")

    def _split(self, qty: Decimal, step: Decimal) -> list[Decimal]:
        parts = self.faults.split_fills
        if parts <= 1:
            return [qty]
        piece = (qty / parts / step).to_integral_value(rounding=ROUND_DOWN) * step
        if piece <= 0:
            return [qty]
        out = [piece] * (parts - 1)
        out.append(qty - piece * (parts - 1))
        return [p for p in out if p > 0]

    def _match_resting(self, symbol: str, trade: tuple[Decimal, Decimal] | None) -> None:
        for order in sorted(
            (o for o in self.orders.values() if o.symbol == symbol and o.is_open), key=lambda o: o.order_id
        ):
            if not order.is_open:
                continue
            if order.type == "STOP_LOSS":
                self._check_stop(order, trade[0] if trade else None)
                continue
            if trade is not None:
                price, qty = trade
                if price < order.price if order.side == "BUY" else price > order.price:
                    self._expire_siblings(order)
                    self._fill(order, order.price, min(order.remaining, qty), maker=True)
                continue
            levels = self.asks[symbol] if order.side == "BUY" else self.bids[symbol]
            for i, (price, qty) in enumerate(levels):
                if order.remaining <= 0 or not (price <= order.price if order.side == "BUY" else price >= order.price):
                    break
                take = min(order.remaining, qty)
                levels[i] = (price, qty - take)
                self._expire_siblings(order)
                self._fill(order, order.price, take, maker=True)
            levels[:] = [(p, q) for p, q in levels if q > 0]

    def _check_stop(self, order: PeerOrder, trade_price: Decimal | None) -> None:
        ref = trade_price or self.last_price[order.symbol]
        if not ref:
            return
        stop = order.stop_price
        if order.trailing_delta:
            delta = D(order.trailing_delta) / D(10000)
            if order.side == "SELL":
                order.peak = max(order.peak or ref, ref)
                stop = order.peak * (1 - delta)
            else:
                order.peak = min(order.peak or ref, ref)
                stop = order.peak * (1 + delta)
        if ref <= stop if order.side == "SELL" else ref >= stop:
            order.triggered = True
            self._expire_siblings(order)
            self._take(order, None)

    def _fill(self, order: PeerOrder, price: Decimal, qty: Decimal, maker: bool) -> None:
        spec = self.specs[order.symbol]
        quote = price * qty
        order.executed += qty
        order.cum_quote += quote
        order.status = "FILLED" if order.remaining == 0 else "PARTIALLY_FILLED"
        order.update_ms = self.server_time_ms()
        if order.side == "BUY":
            commission, asset = (qty * self.commission).quantize(EIGHT), spec.base
            spend = quote.quantize(EIGHT)
            from_lock = min(spend, order.locked) if order.locked_asset == spec.quote else D(0)
            order.locked -= from_lock
            self.locked[spec.quote] = self.locked.get(spec.quote, D(0)) - from_lock
            self.free[spec.quote] -= spend - from_lock
            self.free[spec.base] = self.free.get(spec.base, D(0)) + qty - commission
        else:
            commission, asset = (quote * self.commission).quantize(EIGHT), spec.quote
            holder = order if order.locked_asset == spec.base else self._list_lock_holder(order)
            from_lock = min(qty, holder.locked) if holder is not None else D(0)
            if holder is not None:
                holder.locked -= from_lock
                self.locked[spec.base] -= from_lock
            self.free[spec.base] -= qty - from_lock
            self.free[spec.quote] += quote.quantize(EIGHT) - commission
        trade = PeerTrade(
            order.symbol,
            next(self._trade_ids),
            order.order_id,
            order.order_list_id,
            price,
            qty,
            commission,
            asset,
            order.update_ms,
            order.side == "BUY",
            maker,
        )
        self.trades.append(trade)
        if not maker:
            # A maker fill happens inside a trade() already counted; a taker fill is a new market trade.
            self.last_price[order.symbol] = price
            self.averages.add(order.symbol, time.time(), price, qty)
        self._event(order, "TRADE", trade=trade)
        if order.status == "FILLED":
            self._release_leftover(order)
            if order.order_list_id != -1:
                self._list_done(order.order_list_id)

    def _list_lock_holder(self, order: PeerOrder) -> PeerOrder | None:
        if order.order_list_id == -1:
            return None
        return next((self.orders[o] for o in self.lists[order.order_list_id].order_ids if self.orders[o].locked), None)

    def _release_leftover(self, order: PeerOrder) -> None:
        holder = order if order.locked else self._list_lock_holder(order)
        if holder is None:
            return
        if order.order_list_id != -1 and any(self.orders[o].is_open for o in self.lists[order.order_list_id].order_ids):
            return
        self._unlock(holder)

    def _close(self, order: PeerOrder, status: str, cancel_id: str = "") -> None:
        order.status = status
        order.update_ms = self.server_time_ms()
        self._event(order, status, cancel_id=cancel_id)
        self._release_leftover(order)

    def _siblings(self, order: PeerOrder) -> list[PeerOrder]:
        lst = self.lists.get(order.order_list_id)
        if lst is None:
            return []
        return [self.orders[o] for o in lst.order_ids if o != order.order_id and self.orders[o].is_open]

    def _expire_siblings(self, order: PeerOrder) -> None:
        """An OCO leg that trades or triggers expires the other leg."""
        for sibling in self._siblings(order):
            self._close(sibling, "EXPIRED")

    def _list_done(self, list_id: int) -> None:
        lst = self.lists[list_id]
        if lst.status == "EXECUTING" and not any(self.orders[o].is_open for o in lst.order_ids):
            lst.status = "ALL_DONE"
            self._list_status(lst, "ALL_DONE")

    # -- JSON shapes ------------------------------------------------------------------------------
    def _order_json(self, order: PeerOrder, full: bool = False) -> dict:
        body = {
            "symbol": order.symbol,
            "orderId": order.order_id,
            "orderListId": order.order_list_id,
            "clientOrderId": order.client_order_id,
            "price": _s(order.price),
            "origQty": _s(order.quantity),
            "executedQty": _s(order.executed),
            "cummulativeQuoteQty": _s(order.cum_quote),
            "status": order.status,
            "timeInForce": order.time_in_force,
            "type": order.type,
            "side": order.side,
            "workingTime": order.time_ms,
            "selfTradePreventionMode": "NONE",
        }
        if order.type == "STOP_LOSS":
            body["stopPrice"] = _s(order.stop_price)
            if order.trailing_delta:
                body["trailingDelta"] = order.trailing_delta
        if full:
            body["transactTime"] = order.time_ms
            body["origQuoteOrderQty"] = "0.00000000"
            body["fills"] = [
                {
                    "price": _s(t.price),
                    "qty": _s(t.qty),
                    "commission": _s(t.commission),
                    "commissionAsset": t.commission_asset,
                    "tradeId": t.trade_id,
                }
                for t in self.trades
                if t.order_id == order.order_id
            ]
        else:
            body.update(
                time=order.time_ms,
                updateTime=order.update_ms,
                isWorking=order.type != "STOP_LOSS" or order.triggered,
                icebergQty="0.00000000",
                origQuoteOrderQty="0.00000000",
            )
        return body

    def _event(
        self, order: PeerOrder, execution_type: str, trade: PeerTrade | None = None, cancel_id: str = ""
    ) -> None:
        now = self.server_time_ms()
        event = {
            "e": "executionReport",
            "E": now,
            "s": order.symbol,
            "c": cancel_id or order.client_order_id,
            "S": order.side,
            "o": order.type,
            "f": order.time_in_force,
            "q": _s(order.quantity),
            "p": _s(order.price),
            "P": _s(order.stop_price),
            "F": "0.00000000",
            "g": order.order_list_id,
            "C": order.client_order_id if cancel_id else "",
            "x": execution_type,
            "X": order.status,
            "r": "NONE",
            "i": order.order_id,
            "l": _s(trade.qty) if trade else "0.00000000",
            "z": _s(order.executed),
            "L": _s(trade.price) if trade else "0.00000000",
            "n": _s(trade.commission) if trade else "0",
            "N": trade.commission_asset if trade else None,
            "T": trade.time_ms if trade else now,
            "t": trade.trade_id if trade else -1,
            "I": next(self._ids),
            "w": order.is_open,
            "m": trade.is_maker if trade else False,
            "M": False,
            "O": order.time_ms,
            "Z": _s(order.cum_quote),
            "Y": _s(trade.price * trade.qty) if trade else "0.00000000",
            "Q": "0.00000000",
            "W": order.time_ms,
            "V": "NONE",
        }
        if order.trailing_delta:
            event["d"] = order.trailing_delta
        self._push(event)

    def _list_status(self, lst: OrderList, status_type: str) -> None:
        self._push(
            {
                "e": "listStatus",
                "E": self.server_time_ms(),
                "s": lst.symbol,
                "g": lst.list_id,
                "c": "OCO",
                "l": status_type,
                "L": "ALL_DONE" if status_type == "ALL_DONE" else "EXECUTING",
                "r": "NONE",
                "C": lst.list_client_order_id,
                "T": self.server_time_ms(),
                "O": [{"s": lst.symbol, "i": o, "c": self.orders[o].client_order_id} for o in lst.order_ids],
            }
        )

    # -- WebSocket API ----------------------------------------------------------------------------
    def _push(self, event: dict) -> None:
        for sub in list(self._subscribers):
            if self._stalled(sub.connection):
                continue  # lost, as on a stream that stopped delivering
            text = json.dumps({"subscriptionId": sub.subscription_id, "event": event})
            try:
                with sub.lock:
                    sub.connection.send(text)
            except Exception:
                with contextlib.suppress(ValueError):
                    self._subscribers.remove(sub)

    def _ws_handler(self, connection: ServerConnection) -> None:
        if self.faults.refuse_streams or not (connection.request and connection.request.path.startswith("/ws-api/v3")):
            connection.close(1008, "unavailable")
            return
        lock = threading.Lock()
        with self._lock:
            self._ws_connections.append(_WsConnection(connection, lock, time.monotonic()))
            self.ws_connections_total += 1
        try:
            for raw in connection:
                request = json.loads(raw)
                if self._stalled(connection):
                    continue  # a stalled connection reads but never answers
                answer = self._ws_request(connection, request, lock)
                with lock:
                    connection.send(json.dumps(answer))
        except (ConnectionClosed, json.JSONDecodeError):
            pass
        finally:
            with self._lock:
                self._subscribers = [s for s in self._subscribers if s.connection is not connection]
                self._ws_connections = [c for c in self._ws_connections if c.connection is not connection]

    def _ws_request(self, connection: ServerConnection, request: dict, lock: threading.Lock) -> dict:
        rid, method, params = request.get("id"), request.get("method"), dict(request.get("params") or {})
        try:
            if method == "userDataStream.subscribe.signature":
                if params.get("apiKey") != self.api_key:
                    raise ApiError(401, -2015, "Invalid API-key, IP, or permissions for action.")
                signature = params.pop("signature", "")
                payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
                self._verify(payload, signature, params)
                with self._lock:
                    sub = _Subscriber(connection, next(self._sub_ids), lock)
                    self._subscribers.append(sub)
                return {"id": rid, "status": 200, "result": {"subscriptionId": sub.subscription_id}}
            if method == "userDataStream.unsubscribe":
                with self._lock:
                    self._subscribers = [s for s in self._subscribers if s.connection is not connection]
                return {"id": rid, "status": 200, "result": {}}
            if method == "ping":
                return {"id": rid, "status": 200, "result": {}}
            raise ApiError(400, -1100, f"Unknown method {method}")
        except ApiError as exc:
            return {"id": rid, "status": exc.http_status, "error": {"code": exc.code, "msg": exc.msg}}
