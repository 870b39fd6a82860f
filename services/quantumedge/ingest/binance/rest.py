"""The one REST call market data needs: GET /api/v3/depth (the order book snapshot)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

from quantumedge.ingest.binance.book import DepthSnapshot
from quantumedge.ingest.binance.messages import MalformedFrameError, VenueError, parse_error, parse_snapshot

# Binance answers 429 when a client exceeds its request weight and 418 once it has been banned for that.
_RATE_LIMITED = (418, 429)


class SnapshotError(Exception):
    """The snapshot could not be fetched. `retry_after_s` is the venue's wish when it gave one."""

    def __init__(
        self, message: str, *, status: int = 0, code: int = 0, retry_after_s: float | None = None, permanent=False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s
        # A request that cannot succeed as made (e.g. -1121 "Invalid symbol."): retry only slowly.
        self.permanent = permanent


def depth_url(base_url: str, symbol: str, limit: int) -> str:
    query = urllib.parse.urlencode({"symbol": symbol.upper(), "limit": limit})
    return f"{base_url.rstrip('/')}/api/v3/depth?{query}"


def fetch_depth_snapshot(base_url: str, symbol: str, limit: int, timeout_s: float) -> DepthSnapshot:
    """The order book snapshot of `symbol` (blocking; callers run it off the event loop)."""
    url = depth_url(base_url, symbol, limit)
    if not url.startswith(("http://", "https://")):
        raise SnapshotError(f"REST URL must be http(s): {base_url!r}", permanent=True)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - scheme checked
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise _http_error(exc, symbol) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise SnapshotError(f"depth snapshot of {symbol}: {exc}") from None
    try:
        return parse_snapshot(json.loads(body))
    except ValueError as exc:  # includes MalformedFrameError and JSON errors
        raise SnapshotError(f"depth snapshot of {symbol} is malformed: {exc}") from None
    except VenueError as exc:
        raise SnapshotError(str(exc), code=exc.error.code) from None


def _http_error(exc: urllib.error.HTTPError, symbol: str) -> SnapshotError:
    retry_after: float | None = None
    header = exc.headers.get("Retry-After") if exc.headers else None
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    code, msg = 0, exc.reason
    try:
        error = parse_error(json.loads(exc.read()))
        code, msg = error.code, error.msg
    except (ValueError, MalformedFrameError, OSError):
        pass
    permanent = 400 <= exc.code < 500 and exc.code not in _RATE_LIMITED
    return SnapshotError(
        f"depth snapshot of {symbol}: HTTP {exc.code} code={code} {msg}",
        status=exc.code,
        code=code,
        retry_after_s=retry_after,
        permanent=permanent,
    )
