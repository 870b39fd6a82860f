"""Binance answers mapped by their error CODE (Binance "Error codes"), the HTTP status deciding only when
there is no code; and the two separate rate budgets: request weight per IP and new orders per account."""

from __future__ import annotations

import json

import pytest
import requests

from quantumedge.execution.binance import BinanceRestClient, HmacSigner
from quantumedge.execution.errors import (
    OrderNotFound,
    OrderRateLimited,
    OutcomeUnknown,
    RateLimited,
    VenueRejected,
    VenueUnavailable,
)
from quantumedge.execution.retry import RateLimiter, interval_key, interval_seconds

TIMEOUT = "Timeout waiting for response from backend server. Send status unknown; execution status unknown."


def answer(status: int, body: object = None, headers: dict[str, str] | None = None, raw: bytes | None = None):
    resp = requests.Response()
    resp.status_code = status
    resp._content = raw if raw is not None else json.dumps(body).encode()
    resp.headers.update(headers or {})
    return resp


class Clock:
    def __init__(self) -> None:
        self.t = 1_000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def client() -> BinanceRestClient:
    clock = Clock()
    return BinanceRestClient(
        "http://127.0.0.1:1",
        "qe-test-error-map-api-key",
        HmacSigner("qe-test-error-map-hmac"),
        limiter=RateLimiter(clock=clock, wall=clock),
    )


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (408, {"code": -1007, "msg": TIMEOUT}, OutcomeUnknown, "-1007"),
        (400, {"code": -1007, "msg": TIMEOUT}, OutcomeUnknown, "-1007"),
        (503, {"code": -1007, "msg": TIMEOUT}, OutcomeUnknown, "-1007"),
        (
            500,
            {"code": -1006, "msg": "An unexpected response was received from the message bus."},
            OutcomeUnknown,
            "-1006",
        ),
        (502, None, OutcomeUnknown, "502"),
        (408, None, OutcomeUnknown, "408"),
        (503, {"code": -1008, "msg": "Server is currently overloaded with other requests."}, VenueUnavailable, "-1008"),
        (400, {"code": -1016, "msg": "This service is no longer available."}, VenueUnavailable, "-1016"),
        (400, {"code": -2013, "msg": "Order does not exist."}, OrderNotFound, "-2013"),
        (400, {"code": -2011, "msg": "Unknown order sent."}, OrderNotFound, "-2011"),
        (400, {"code": -2011, "msg": "Order was not canceled due to cancel restrictions."}, VenueRejected, "-2011"),
        (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}, VenueRejected, "-2010"),
        (400, {"code": -1013, "msg": "Filter failure: PERCENT_PRICE_BY_SIDE"}, VenueRejected, "-1013"),
        (404, None, VenueRejected, "404"),
    ],
)
def test_the_error_code_decides_the_outcome_class(client, status, body, kind, code) -> None:
    raw = b"" if body is None else None
    with pytest.raises(kind) as err:
        client._interpret("POST", "/api/v3/order", answer(status, body, raw=raw))
    assert type(err.value) is kind and err.value.code == code


def test_an_unreadable_success_is_an_unknown_outcome(client) -> None:
    with pytest.raises(OutcomeUnknown):
        client._interpret("POST", "/api/v3/order", answer(200, raw=b"<html>"))


def test_request_weight_429_blocks_every_request_for_retry_after(client) -> None:
    with pytest.raises(RateLimited) as err:
        client._interpret(
            "GET", "/api/v3/order", answer(429, {"code": -1003, "msg": "Too many requests"}, {"Retry-After": "3"})
        )
    assert type(err.value) is RateLimited and err.value.code == "-1003" and not err.value.banned
    assert client.limiter.before(1) == pytest.approx(3.0)
    with pytest.raises(RateLimited) as ban:
        client._interpret(
            "GET", "/api/v3/order", answer(418, {"code": -1003, "msg": "IP banned"}, {"Retry-After": "9"})
        )
    assert ban.value.banned and client.limiter.before(1) == pytest.approx(9.0)


def test_minus_1015_holds_back_new_orders_only(client) -> None:
    headers = {"Retry-After": "2"}
    body = {"code": -1015, "msg": "Too many new orders; current limit is 100 orders per 10 SECOND."}
    with pytest.raises(OrderRateLimited) as err:
        client._interpret("POST", "/api/v3/order", answer(429, body, headers))
    assert err.value.code == "-1015" and err.value.retry_after_s == 2
    # Cancels and queries spend request weight only: they go at once.
    assert client.limiter.before(1) == 0.0
    assert client.limiter.before_order() == pytest.approx(2.0)


def test_order_count_headers_hold_back_the_order_that_would_exceed_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(headroom=1.0, clock=clock, wall=clock)
    limiter.order_limits = {"10S": 3, "1D": 1000}
    limiter.observe({"X-MBX-ORDER-COUNT-10S": "2", "x-mbx-order-count-1d": "2"})
    assert limiter.before_order() == 0.0
    limiter.observe({"X-MBX-ORDER-COUNT-10S": "3"})
    assert limiter.before_order() == pytest.approx(10.0)  # clock.t = 1000.0: the window ends at 1010
    assert limiter.before(1) == 0.0  # a cancel is not an order
    clock.t += 10.0
    assert limiter.before_order() == 0.0  # a new window: the venue's count has reset
    assert limiter.order_counts["1D"] == (2, 0)


def test_rate_limit_intervals_read_as_binance_names_them() -> None:
    assert interval_key("SECOND", 10) == "10S" and interval_key("DAY", 1) == "1D"
    assert interval_seconds("10S") == 10 and interval_seconds("1D") == 86400 and interval_seconds("x") == 0
