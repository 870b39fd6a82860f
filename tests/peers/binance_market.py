"""A local Binance spot market-data peer: combined-stream websocket + REST depth snapshot.

It speaks Binance's documented JSON (the `{"stream", "data"}` envelope, trade / bookTicker /
depthUpdate payloads, the `/api/v3/depth` snapshot, `{"code", "msg"}` errors, the
`{"stream": "!serverShutdown", ...}` event), keeps its own authoritative order book per symbol, cuts
connections at a maximum age (Binance: 24 hours), and misbehaves on command: dropped connections, a
silent connection (no frames, no pongs), a quiet one (pongs but no data), a sequence gap, malformed
frames, a stale snapshot, rate limits.

Nothing happens by itself: tests push events explicitly, so runs are deterministic.
Websocket on asyncio in one thread, REST on http.server in another, both on 127.0.0.1 with
ports the OS picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

# Prices in integer ticks of 0.01, quantities in lots of 0.001: exact decimal strings both ways.
_TICK = 0.01
_LOT = 0.001


def _price(tick: int) -> str:
    return f"{tick * _TICK:.2f}"


def _qty(lots: int) -> str:
    return f"{lots * _LOT:.3f}"


@dataclass
class PeerBook:
    mid_tick: int
    bids: dict[int, int] = field(default_factory=dict)  # tick -> lots
    asks: dict[int, int] = field(default_factory=dict)
    last_update_id: int = 1000
    trade_id: int = 5000

    def snapshot(self, limit: int) -> dict[str, Any]:
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return {
            "lastUpdateId": self.last_update_id,
            "bids": [[_price(t), _qty(q)] for t, q in bids],
            "asks": [[_price(t), _qty(q)] for t, q in asks],
        }

    def as_floats(self) -> tuple[int, dict[float, float], dict[float, float]]:
        """The book as a client parses it: float(price string) -> float(quantity string)."""
        return (
            self.last_update_id,
            {float(_price(t)): float(_qty(q)) for t, q in self.bids.items()},
            {float(_price(t)): float(_qty(q)) for t, q in self.asks.items()},
        )


@dataclass
class _Client:
    conn: ServerConnection
    streams: set[str]
    silent: bool = False
    # Still reads and answers pings, but is sent no data.
    quiet: bool = False
    opened: float = field(default_factory=time.monotonic)


class BinanceMarketPeer:
    def __init__(
        self,
        symbols: Iterable[str] = ("BTCUSDT", "ETHUSDT"),
        seed: int = 1,
        levels: int = 20,
        max_connection_age_s: float = 24 * 3600,
    ) -> None:
        self.symbols = [s.upper() for s in symbols]
        # "A single connection to stream.binance.com is only valid for 24 hours": older ones are cut.
        self.max_connection_age_s = max_connection_age_s
        self._rng = random.Random(seed)
        self._lock = threading.Lock()  # guards books (the REST thread reads them)
        self.books: dict[str, PeerBook] = {}
        for i, sym in enumerate(self.symbols):
            book = PeerBook(mid_tick=3_000_000 // (i + 1))
            for k in range(1, levels + 1):
                book.bids[book.mid_tick - k] = self._rng.randint(1, 5000)
                book.asks[book.mid_tick + k] = self._rng.randint(1, 5000)
            self.books[sym] = book
        self._clients: list[_Client] = []
        self._skip_next_diff: set[str] = set()
        self._last_diff: dict[str, dict[str, Any]] = {}
        self._stale: list[dict[str, dict[str, Any]]] = []  # queued stale snapshots, by symbol
        self._rate_limited = 0
        # Recorded REST snapshots by symbol (replaying a capture), each answered once its gate opens.
        self._recorded: dict[str, tuple[dict[str, Any], threading.Event]] = {}
        # Observations for tests.
        self.connections_total = 0
        self.snapshot_requests = 0
        self.paths: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self.ws_port = 0
        self.rest_port = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self) -> BinanceMarketPeer:
        ready = threading.Event()
        thread = threading.Thread(target=self._run_loop, args=(ready,), name="binance-peer-ws", daemon=True)
        thread.start()
        if not ready.wait(10):
            raise RuntimeError("binance peer websocket server did not start")
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _rest_handler(self))
        self._http.daemon_threads = True
        self.rest_port = self._http.server_address[1]
        http_thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="binance-peer-rest", daemon=True
        )
        http_thread.start()
        self._threads = [thread, http_thread]
        return self

    def _run_loop(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop

        async def main() -> None:
            self._server = await serve(self._handler, "127.0.0.1", 0, compression=None)
            self.ws_port = self._server.sockets[0].getsockname()[1]
            ready.set()
            cutter = asyncio.create_task(self._cut_old_connections())
            await self._server.wait_closed()
            cutter.cancel()

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        if self._loop is not None and self._server is not None:

            async def close() -> None:
                for client in list(self._clients):
                    client.conn.transport.abort()
                self._server.close()

            with contextlib.suppress(Exception):
                self._call(close(), timeout=5)
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> BinanceMarketPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # -- websocket ---------------------------------------------------------------------------------
    async def _handler(self, conn: ServerConnection) -> None:
        path = conn.request.path if conn.request else ""
        self.paths.append(path)
        parsed = urllib.parse.urlsplit(path)
        if parsed.path != "/stream":
            await conn.close(1008, "only the combined stream endpoint /stream is served")
            return
        streams = {s for s in urllib.parse.parse_qs(parsed.query).get("streams", [""])[0].split("/") if s}
        # A new connection means the old silent ones are dead to the client: let them go.
        for old in [c for c in self._clients if c.silent]:
            old.conn.transport.abort()
            self._clients.remove(old)
        client = _Client(conn, streams)
        self._clients.append(client)
        self.connections_total += 1
        try:
            async for message in conn:
                await self._on_request(client, message)
        except ConnectionClosed:
            pass
        finally:
            if client in self._clients:
                self._clients.remove(client)

    async def _cut_old_connections(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            for client in [c for c in self._clients if now - c.opened >= self.max_connection_age_s]:
                await client.conn.close(1000, "connection age limit")

    async def _on_request(self, client: _Client, message: str | bytes) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, as on Binance's websocket; errors in the documented
        form ({"code": 2|3, "msg": ...}, with the request's id when it had one)."""
        try:
            req = json.loads(message)
        except ValueError as exc:
            await client.conn.send(json.dumps({"code": 3, "msg": f"Invalid JSON: {exc}"}))
            return
        if not isinstance(req, dict) or "method" not in req:
            await client.conn.send(json.dumps({"code": 2, "msg": "Invalid request: missing field `method`"}))
            return
        method, req_id = req["method"], req.get("id")
        params = req.get("params") or []
        if method == "SUBSCRIBE":
            client.streams.update(params)
            await client.conn.send(json.dumps({"result": None, "id": req_id}))
        elif method == "UNSUBSCRIBE":
            client.streams.difference_update(params)
            await client.conn.send(json.dumps({"result": None, "id": req_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await client.conn.send(json.dumps({"result": sorted(client.streams), "id": req_id}))
        else:
            msg = f"Invalid request: unknown variant `{method}`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, "
            msg += "`LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
            await client.conn.send(json.dumps({"code": 2, "msg": msg, "id": req_id}))

    async def _broadcast(self, stream: str, data: dict[str, Any]) -> None:
        text = json.dumps({"stream": stream, "data": data})
        await self._send_raw(text, stream)

    async def _send_raw(self, text: str, stream: str | None = None) -> None:
        for client in list(self._clients):
            if client.silent or client.quiet or (stream is not None and stream not in client.streams):
                continue
            with contextlib.suppress(ConnectionClosed):
                await client.conn.send(text)

    # -- market activity (call from the test thread) -----------------------------------------------
    def push_depth(self, symbol: str, n: int = 1) -> None:
        """Apply n random diffs to the authoritative book and stream them (unless a gap is armed)."""
        self._call(self._push_depth(symbol.upper(), n))

    async def _push_depth(self, symbol: str, n: int) -> None:
        for _ in range(n):
            data = self._make_diff(symbol)
            if symbol in self._skip_next_diff:
                self._skip_next_diff.discard(symbol)
                continue  # applied here, never sent: the client sees U jump
            self._last_diff[symbol] = data
            await self._broadcast(f"{symbol.lower()}@depth@100ms", data)

    def resend_last_diff(self, symbol: str) -> None:
        """Send the previous diff again: old data arriving late (out of order)."""
        sym = symbol.upper()
        self._call(self._broadcast(f"{sym.lower()}@depth@100ms", self._last_diff[sym]))

    def _make_diff(self, symbol: str) -> dict[str, Any]:
        rng = self._rng
        with self._lock:
            book = self.books[symbol]
            bids: list[list[str]] = []
            asks: list[list[str]] = []
            changes = rng.randint(1, 4)
            used: set[tuple[int, int]] = set()  # Binance lists each price once per side and event
            for _ in range(changes):
                side, out = (book.bids, bids) if rng.random() < 0.5 else (book.asks, asks)
                sign = -1 if side is book.bids else 1
                tick = book.mid_tick + sign * rng.randint(1, 30)
                if len(side) > 5 and rng.random() < 0.3:
                    tick = rng.choice(list(side))
                    lots = 0
                else:
                    lots = rng.randint(0, 5000) if tick in side else rng.randint(1, 5000)
                if (sign, tick) in used:
                    continue
                used.add((sign, tick))
                if lots == 0:
                    side.pop(tick, None)  # removing an unknown level is legal on Binance
                else:
                    side[tick] = lots
                out.append([_price(tick), _qty(lots)])
            first = book.last_update_id + 1
            book.last_update_id += changes
            return {
                "e": "depthUpdate",
                "E": int(time.time() * 1000),
                "s": symbol,
                "U": first,
                "u": book.last_update_id,
                "b": bids,
                "a": asks,
            }

    def push_trade(self, symbol: str, n: int = 1, skip_ids: int = 0) -> None:
        """Stream n trades; skip_ids > 0 makes the first trade id jump (a trade gap)."""
        self._call(self._push_trades(symbol.upper(), n, skip_ids))

    async def _push_trades(self, symbol: str, n: int, skip_ids: int) -> None:
        for i in range(n):
            with self._lock:
                book = self.books[symbol]
                book.trade_id += 1 + (skip_ids if i == 0 else 0)
                now = int(time.time() * 1000)
                data = {
                    "e": "trade",
                    "E": now,
                    "s": symbol,
                    "t": book.trade_id,
                    "p": _price(book.mid_tick + self._rng.randint(-3, 3)),
                    "q": _qty(self._rng.randint(1, 900)),
                    "T": now,
                    "m": self._rng.random() < 0.5,
                    "M": True,
                }
            await self._broadcast(f"{symbol.lower()}@trade", data)

    def push_book_ticker(self, symbol: str, update_id: int | None = None) -> None:
        self._call(self._push_book_ticker(symbol.upper(), update_id))

    async def _push_book_ticker(self, symbol: str, update_id: int | None) -> None:
        with self._lock:
            book = self.books[symbol]
            bid = max(book.bids)
            ask = min(book.asks)
            data = {
                "u": book.last_update_id if update_id is None else update_id,
                "s": symbol,
                "b": _price(bid),
                "B": _qty(book.bids[bid]),
                "a": _price(ask),
                "A": _qty(book.asks[ask]),
            }
        await self._broadcast(f"{symbol.lower()}@bookTicker", data)

    def push_all(self, n: int = 1) -> None:
        """n rounds of depth + trade + book ticker for every symbol."""
        for _ in range(n):
            for sym in self.symbols:
                self.push_depth(sym)
                self.push_trade(sym)
                self.push_book_ticker(sym)

    # -- recorded market (a capture of what Binance sent) -------------------------------------------
    def send_frames(self, frames: Iterable[str]) -> int:
        """Send frames exactly as Binance sent them, in order, to the clients subscribed to each frame's stream."""

        async def send(batch: list[str]) -> int:
            for text in batch:
                try:
                    stream = json.loads(text).get("stream")
                except ValueError:
                    stream = None
                await self._send_raw(text, stream if isinstance(stream, str) else None)
            return len(batch)

        return self._call(send(list(frames)), timeout=120)

    def serve_recorded_snapshot(self, symbol: str, body: dict[str, Any], gate: threading.Event) -> None:
        """Answer depth requests for `symbol` with a recorded /api/v3/depth reply, once `gate` is set.

        The gate stands for the network: it lets a test deliver the answer at the point of the stream
        where the capture received it.
        """
        self._recorded[symbol.upper()] = (body, gate)

    # -- misbehaviour ------------------------------------------------------------------------------
    def drop_connections(self) -> int:
        """Abort every TCP connection without a close frame; returns how many were dropped."""

        async def drop() -> int:
            clients = list(self._clients)
            for client in clients:
                client.conn.transport.abort()
            return len(clients)

        return self._call(drop())

    def go_silent(self) -> int:
        """Current connections stop sending and stop reading (so no pong answers a ping)."""

        async def silence() -> int:
            for client in self._clients:
                client.silent = True
                client.conn.transport.pause_reading()
            return len(self._clients)

        return self._call(silence())

    def go_quiet(self) -> int:
        """Current connections get no more data, but still read and answer pings (only a data watchdog
        can tell). Returns how many went quiet."""

        async def quiet() -> int:
            for client in self._clients:
                client.quiet = True
            return len(self._clients)

        return self._call(quiet())

    def send_server_shutdown(self, close_after_s: float | None = None) -> int:
        """The documented serverShutdown event on every current connection (combined-stream form), which
        the server closes `close_after_s` later (None: leaves them to the client). Returns how many."""
        frame = json.dumps({"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": int(time.time() * 1000)}})

        async def announce() -> int:
            targets = [c for c in self._clients if not c.silent]
            for client in targets:
                with contextlib.suppress(ConnectionClosed):
                    await client.conn.send(frame)
            if close_after_s is not None:

                async def close_later() -> None:
                    await asyncio.sleep(close_after_s)
                    for client in targets:
                        await client.conn.close(1001, "server shutdown")

                asyncio.get_running_loop().create_task(close_later())
            return len(targets)

        return self._call(announce())

    def skip_next_diff(self, symbol: str) -> None:
        """The next diff of `symbol` changes the book but is never sent: a sequence gap."""
        self._skip_next_diff.add(symbol.upper())

    def serve_stale_snapshots(self, count: int = 1) -> None:
        """Capture the books as they are now and answer the next `count` snapshot requests with them."""
        with self._lock:
            captured = {sym: book.snapshot(5000) for sym, book in self.books.items()}
        self._stale.extend([captured] * count)

    def rate_limit_snapshots(self, count: int = 1) -> None:
        """Answer the next `count` snapshot requests with HTTP 429 and Binance's -1003 error."""
        self._rate_limited += count

    MALFORMED = {
        "not_json": "{this is not json",
        "not_object": "[1, 2, 3]",
        "no_envelope": json.dumps({"e": "trade", "s": "BTCUSDT"}),
        "error_payload": json.dumps({"code": -1121, "msg": "Invalid symbol."}),
    }

    def send_malformed(self, symbol: str) -> list[str]:
        """Send one of each kind of bad frame on the symbol's streams; returns the kinds sent."""
        sym = symbol.upper()
        low = sym.lower()
        frames = dict(self.MALFORMED)
        frames["unknown_stream"] = json.dumps(
            {"stream": "dogeusdt@trade", "data": {"e": "trade", "s": "DOGEUSDT", "t": 1, "p": "0.1", "q": "1"}}
        )
        frames["trade_bad_price"] = json.dumps(
            {
                "stream": f"{low}@trade",
                "data": {"e": "trade", "E": 1, "s": sym, "t": 10**12, "p": "abc", "q": "1", "T": 1, "m": True},
            }
        )
        frames["depth_missing_ids"] = json.dumps(
            {"stream": f"{low}@depth@100ms", "data": {"e": "depthUpdate", "E": 1, "s": sym, "b": [], "a": []}}
        )
        frames["depth_bad_level"] = json.dumps(
            {
                "stream": f"{low}@depth@100ms",
                "data": {"e": "depthUpdate", "E": 1, "s": sym, "U": 1, "u": 1, "b": [["1.0"]], "a": []},
            }
        )
        frames["ticker_wrong_symbol"] = json.dumps(
            {"stream": f"{low}@bookTicker", "data": {"u": 1, "s": "XYZ", "b": "1", "B": "1", "a": "2", "A": "1"}}
        )

        async def send() -> None:
            for text in frames.values():
                await self._send_raw(text)

        self._call(send())
        return list(frames)

    # -- observation -------------------------------------------------------------------------------
    def book_state(self, symbol: str) -> tuple[int, dict[float, float], dict[float, float]]:
        with self._lock:
            return self.books[symbol.upper()].as_floats()

    def last_update_id(self, symbol: str) -> int:
        with self._lock:
            return self.books[symbol.upper()].last_update_id

    def top(self, symbol: str, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        _, bids, asks = self.book_state(symbol)
        return (
            sorted(bids.items(), reverse=True)[:n],
            sorted(asks.items())[:n],
        )

    @property
    def active_connections(self) -> int:
        """Connections being sent data."""
        return sum(1 for c in self._clients if not c.silent and not c.quiet)

    @property
    def open_connections(self) -> int:
        return len(self._clients)

    # -- REST --------------------------------------------------------------------------------------
    def _rest_depth(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any], dict[str, str]]:
        self.snapshot_requests += 1
        symbol = (query.get("symbol") or [""])[0].upper()
        if not symbol:
            return (
                400,
                {"code": -1102, "msg": "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."},
                {},
            )
        if symbol not in self.books:
            return 400, {"code": -1121, "msg": "Invalid symbol."}, {}
        try:
            limit = int((query.get("limit") or ["100"])[0])
        except ValueError:
            return 400, {"code": -1100, "msg": "Illegal characters found in parameter 'limit'."}, {}
        if self._rate_limited > 0:
            self._rate_limited -= 1
            return (
                429,
                {"code": -1003, "msg": "Too many requests; please use the websocket for live updates."},
                {"Retry-After": "0"},
            )
        if symbol in self._recorded:
            body, gate = self._recorded[symbol]
            gate.wait(60)
            return 200, {**body, "bids": body["bids"][:limit], "asks": body["asks"][:limit]}, {}
        if self._stale:
            captured = self._stale.pop(0)[symbol]
            return 200, {**captured, "bids": captured["bids"][:limit], "asks": captured["asks"][:limit]}, {}
        with self._lock:
            return 200, self.books[symbol].snapshot(min(limit, 5000)), {}


def _rest_handler(peer: BinanceMarketPeer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            if parsed.path == "/api/v3/depth":
                status, body, headers = peer._rest_depth(urllib.parse.parse_qs(parsed.query))
            else:
                status, body, headers = 404, {"code": -1000, "msg": "Not found."}, {}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: tests read counters, not access logs."""

    return Handler


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll until predicate() is true; fail with `what` if it never becomes true (a safety net, not a timing)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)
