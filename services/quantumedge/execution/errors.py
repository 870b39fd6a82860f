"""What can go wrong talking to a venue, split by what the caller may safely do next."""

from __future__ import annotations


class VenueError(Exception):
    """Base of venue failures. `code` and `message` are the venue's own where it gave them."""

    def __init__(self, code: str = "", message: str = "") -> None:
        super().__init__(f"{code} {message}".strip())
        self.code = code
        self.message = message


class VenueRejected(VenueError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    """The venue answered and refused: nothing was placed (or nothing was cancelled). Do not retry as is."""


class OrderNotFound(VenueError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    """The venue has no order with that id (Binance -2013 on query, -2011 on cancel)."""


class VenueUnavailable(VenueError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    """The request was not executed (connection refused, DNS, the venue busy or shutting down): safe to
    send again later."""


class OutcomeUnknown(VenueError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    """The request may have been executed (timeout after sending, 5xx, Binance -1006/-1007): an order is
    never sent again until its fate is known (user data stream, queries, trades)."""


class RateLimited(VenueError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    """HTTP 429 (back off) or 418 (IP banned) with the venue's Retry-After; the request was not executed."""

    def __init__(self, retry_after_s: float, banned: bool, code: str = "", message: str = "") -> None:
        super().__init__(code or ("418" if banned else "429"), message or ("IP banned" if banned else "rate limited"))
        self.retry_after_s = retry_after_s
        self.banned = banned


class OrderRateLimited(RateLimited):
    """The account's new-order rate (Binance -1015, X-MBX-ORDER-COUNT-*) is used up: new orders wait;
    cancels and queries are not affected."""


class CredentialsUnavailable(RuntimeError):  # noqa: N818 - a state, read as 'raise VenueRejected'
    """A venue that needs keys cannot get them; the message names the secret path and reason, never a value."""
