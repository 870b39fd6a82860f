"""Binance spot signed REST client, shared by the testnet and live venues.

Signing follows Binance's "SIGNED endpoint security": every signed request carries `timestamp` (server
time, from an offset measured with GET /api/v3/time) and `recvWindow`; the signature is HMAC-SHA256
(hex) or Ed25519 (base64) over the exact query string sent. Keys stay in this object's memory.

Errors are mapped to what the caller may do next (quantumedge.execution.errors) by Binance's error
CODE first, the HTTP status only when there is no code (Binance "Error codes"): -1006 and -1007 mean
"execution status unknown" whatever the status they come with (-1007 does "not always mean that the
request failed in the Matching Engine"), as do a timeout after sending and a 5xx; -1003 is the IP's
request weight (429/418 with Retry-After), -1015 the account's order rate, which holds back new orders
only; -1008/-1016 were not executed; -2013 and -2011 "Unknown order sent." mean no such order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from quantumedge.execution.errors import (
    OrderNotFound,
    OrderRateLimited,
    OutcomeUnknown,
    RateLimited,
    VenueError,
    VenueRejected,
    VenueUnavailable,
)
from quantumedge.execution.retry import RateLimiter
from quantumedge.shared.logs import get_logger, register_secret

log = get_logger(__name__)

TIMESTAMP_OUTSIDE_RECV_WINDOW = -1021
NO_SUCH_ORDER = -2013
CANCEL_REJECTED = -2011
TOO_MANY_REQUESTS = -1003
TOO_MANY_ORDERS = -1015
# The request may have reached the matching engine: its result is unknown (-1000 UNKNOWN, -1001
# DISCONNECTED "internal error", -1006 UNEXPECTED_RESP, -1007 TIMEOUT).
UNKNOWN_OUTCOME_CODES = frozenset({-1000, -1001, -1006, -1007})
# Refused before execution, try later: -1008 SERVER_BUSY, -1016 SERVICE_SHUTTING_DOWN.
NOT_EXECUTED_CODES = frozenset({-1008, -1016})
NOT_FOUND_MESSAGES = ("Unknown order sent.", "Order does not exist.", "Order list does not exist.")


class Signer:
    """Signs a payload string the way Binance verifies it for one key type."""

    key_type = ""

    def sign(self, payload: str) -> str:  # pragma: no cover - interface
        raise NotImplementedError


class HmacSigner(Signer):
    key_type = "HMAC"

    def __init__(self, secret: str) -> None:
        register_secret(secret)
        self._secret = secret.encode()

    def sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()


class Ed25519Signer(Signer):
    key_type = "Ed25519"

    def __init__(self, private_key_pem: str | bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
        register_secret(pem.decode(errors="ignore"))
        key = load_pem_private_key(pem, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("private_key_pem is not an Ed25519 private key")
        self._key = key

    def sign(self, payload: str) -> str:
        return base64.b64encode(self._key.sign(payload.encode())).decode()


def make_signer(credentials: Mapping[str, str]) -> Signer:
    """HMAC when the secret has api_secret, Ed25519 when it has private_key (PEM; private_key_pem also read)."""
    pem = credentials.get("private_key") or credentials.get("private_key_pem")
    if pem:
        return Ed25519Signer(pem)
    if credentials.get("api_secret"):
        return HmacSigner(credentials["api_secret"])
    raise ValueError("exchange credentials need api_secret (HMAC) or private_key (Ed25519 PEM)")


def fmt(value: Decimal | int | str) -> str:
    """Decimal on the wire without exponent (Binance rejects 1E+2)."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: Mapping[str, str]


class BinanceRestClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        signer: Signer,
        recv_window_ms: int = 5000,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        limiter: RateLimiter | None = None,
        max_wait_s: float = 30.0,
    ) -> None:
        register_secret(api_key)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.signer = signer
        self.recv_window_ms = recv_window_ms
        self.timeout = (connect_timeout_s, read_timeout_s)
        self.limiter = limiter or RateLimiter()
        self.max_wait_s = max_wait_s
        self.offset_ms = 0
        self._session = requests.Session()
        self._lock = threading.Lock()

    @property
    def api_key(self) -> str:
        return self._api_key

    def set_credentials(self, api_key: str, signer: Signer) -> None:
        register_secret(api_key)
        self._api_key = api_key
        self.signer = signer

    # -- time -------------------------------------------------------------------------------------
    def sync_time(self) -> int:
        """Measure server time minus local time (ms), halving the round trip."""
        t0 = time.time()
        body = self.request("GET", "/api/v3/time").body
        t1 = time.time()
        self.offset_ms = int(body["serverTime"] - (t0 + t1) / 2 * 1000)
        return self.offset_ms

    def server_time_ms(self) -> int:
        return int(time.time() * 1000) + self.offset_ms

    # -- requests ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        signed: bool = False,
        weight: int = 1,
        api_key: bool = False,
        orders: int = 0,
    ) -> Response:
        """One request (`orders` > 0: it places that many new orders). Re-signs once after -1021 (clock
        drift: nothing was executed)."""
        for attempt in range(2):
            try:
                return self._once(method, path, params, signed, weight, api_key, orders)
            except VenueRejected as exc:
                if signed and exc.code == str(TIMESTAMP_OUTSIDE_RECV_WINDOW) and attempt == 0:
                    log.warning("timestamp outside recvWindow: re-syncing server time")
                    self.sync_time()
                    continue
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def signed_query(self, params: Mapping[str, Any]) -> tuple[str, int]:
        """The query string with timestamp, recvWindow and signature; and the timestamp used."""
        full = {k: fmt(v) for k, v in params.items() if v is not None and v != ""}
        full["recvWindow"] = str(self.recv_window_ms)
        timestamp = self.server_time_ms()
        full["timestamp"] = str(timestamp)
        query = urlencode(full)
        return f"{query}&signature={quote(self.signer.sign(query), safe='')}", timestamp

    def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        signed: bool,
        weight: int,
        api_key: bool,
        orders: int = 0,
    ) -> Response:
        self._wait_for_limits(weight, orders)
        if signed:
            query, _ = self.signed_query(params or {})
        else:
            query = urlencode({k: fmt(v) for k, v in (params or {}).items() if v is not None and v != ""})
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        headers = {"X-MBX-APIKEY": self._api_key} if (signed or api_key) else {}
        try:
            resp = self._session.request(method, url, headers=headers, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise VenueUnavailable("connect-timeout", f"{method} {path}: could not connect") from exc
        except requests.exceptions.ReadTimeout as exc:
            raise OutcomeUnknown("timeout", f"{method} {path}: no answer in {self.timeout[1]}s") from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise VenueUnavailable("connection-refused", f"{method} {path}: {type(exc).__name__}") from exc
            raise OutcomeUnknown("connection-lost", f"{method} {path}: connection lost after sending") from exc
        self.limiter.observe(resp.headers)
        return self._interpret(method, path, resp)

    def _wait_for_limits(self, weight: int, orders: int) -> None:
        """Sleep until the request fits the IP weight (and, for new orders, the order rate), or raise."""
        wait = self.limiter.before(weight)
        kind: type[RateLimited] = RateLimited
        if orders:
            order_wait = self.limiter.before_order(orders)
            if order_wait > wait:
                wait, kind = order_wait, OrderRateLimited
        if wait <= 0:
            return
        if wait > self.max_wait_s:
            if kind is OrderRateLimited:
                code = str(TOO_MANY_ORDERS)
                raise OrderRateLimited(wait, False, code=code, message=f"order rate limit: would wait {wait:.0f}s")
            raise RateLimited(wait, self.limiter.banned, message=f"rate limit: would wait {wait:.0f}s")
        time.sleep(wait)

    def _interpret(self, method: str, path: str, resp: requests.Response) -> Response:
        status = resp.status_code
        try:
            body = resp.json()
        except ValueError:
            body = None
        if 200 <= status < 300:
            if body is None:
                raise OutcomeUnknown(str(status), f"{method} {path}: unreadable answer")
            return Response(status, body, resp.headers)
        code, msg = _error(body)
        where = f"{method} {path}"
        if code is not None:
            raise self._error_for_code(code, msg, status, where, resp.headers)
        # No Binance code: only then does the HTTP status decide.
        if status in (418, 429):
            raise self._rate_limited(status, resp.headers, str(status), "", where)
        if status >= 500 or status == 408:
            raise OutcomeUnknown(str(status), f"{where}: HTTP {status}")
        raise VenueRejected(str(status), f"HTTP {status}")

    def _error_for_code(self, code: int, msg: str, status: int, where: str, headers: Mapping[str, str]) -> VenueError:
        text = str(code)
        if code == TOO_MANY_REQUESTS or (code != TOO_MANY_ORDERS and status in (418, 429)):
            return self._rate_limited(status, headers, text, msg, where)
        if code == TOO_MANY_ORDERS:
            retry_after = _retry_after(headers.get("Retry-After"))
            self.limiter.block_orders(retry_after)
            log.warning("binance order rate limit", extra={"retry_after_s": retry_after, "path": where})
            return OrderRateLimited(retry_after, banned=False, code=text, message=msg)
        if code in UNKNOWN_OUTCOME_CODES:
            return OutcomeUnknown(text, f"{where}: {msg or 'execution status unknown'}")
        if code in NOT_EXECUTED_CODES:
            return VenueUnavailable(text, f"{where}: {msg}")
        if code == NO_SUCH_ORDER or (code == CANCEL_REJECTED and msg in NOT_FOUND_MESSAGES):
            return OrderNotFound(text, msg)
        return VenueRejected(text, msg or f"HTTP {status}")

    def _rate_limited(self, status: int, headers: Mapping[str, str], code: str, msg: str, where: str) -> RateLimited:
        retry_after = _retry_after(headers.get("Retry-After"))
        self.limiter.block(retry_after, banned=status == 418)
        log.warning("binance rate limit", extra={"status": status, "retry_after_s": retry_after, "path": where})
        return RateLimited(retry_after, banned=status == 418, code=code, message=msg)

    def close(self) -> None:
        self._session.close()


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError)


def _retry_after(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 1.0
    except ValueError:
        return 1.0


def _error(body: Any) -> tuple[int | None, str]:
    """Binance's {"code": -1121, "msg": "Invalid symbol."}; (None, "") when the body has no code."""
    if not isinstance(body, dict):
        return None, ""
    code = body.get("code")
    try:
        number = int(code) if code is not None and not isinstance(code, bool) else None
    except (TypeError, ValueError):
        number = None
    return number, str(body.get("msg", ""))


__all__ = [
    "BinanceRestClient",
    "Ed25519Signer",
    "HmacSigner",
    "OrderNotFound",
    "Response",
    "Signer",
    "VenueError",
    "fmt",
    "make_signer",
]
