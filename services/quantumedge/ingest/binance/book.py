"""A local order book kept in step with Binance spot's diff-depth stream (pure: no I/O).

The procedure is Binance's "How to manage a local order book correctly" for spot:

1. Buffer the diffs of the stream; note the U of the first one.
2. Fetch a REST snapshot. If its lastUpdateId < that first U, the snapshot predates the buffer:
   fetch again.
3. Drop buffered diffs with u <= lastUpdateId; the first remaining one must bridge the
   snapshot (U <= lastUpdateId + 1 <= u), else updates were lost: start over.
4. Set the book to the snapshot, then apply the buffered and every later diff. After the first
   applied diff each diff must start right after the previous one (U == previous u + 1); a diff
   with u <= the book's id is old and ignored; anything else means a gap: start over.
5. Quantities are absolute; 0 removes the level (removing an unknown level is normal).

`DepthSync` is the state machine; the websocket client feeds it and acts on the outcome.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Level = tuple[float, float]


@dataclass(frozen=True)
class DepthDiff:
    """One `depthUpdate` event: first (U) and final (u) update id, absolute quantities per price."""

    symbol: str
    first_update_id: int
    final_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]
    event_time_ms: int = 0


@dataclass(frozen=True)
class DepthSnapshot:
    """A REST `/api/v3/depth` answer."""

    last_update_id: int
    bids: Sequence[Level]
    asks: Sequence[Level]


class _Side:
    """Price -> quantity plus a sorted price list, so the top N is a slice and not a sort per diff."""

    def __init__(self, descending: bool) -> None:
        self._qty: dict[float, float] = {}
        # Stored ascending; bids read from the end.
        self._prices: list[float] = []
        self._descending = descending

    def clear(self) -> None:
        self._qty.clear()
        self._prices.clear()

    def set(self, price: float, qty: float) -> None:
        if qty == 0.0:
            if self._qty.pop(price, None) is not None:
                del self._prices[bisect.bisect_left(self._prices, price)]
            return
        if price not in self._qty:
            bisect.insort(self._prices, price)
        self._qty[price] = qty

    def top(self, n: int) -> list[Level]:
        prices = self._prices[-n:][::-1] if self._descending else self._prices[:n]
        return [(p, self._qty[p]) for p in prices]

    def as_dict(self) -> dict[float, float]:
        return dict(self._qty)

    def __len__(self) -> int:
        return len(self._qty)


class LocalOrderBook:
    """Bids and asks keyed by price; `last_update_id` is the id of the last applied change."""

    def __init__(self) -> None:
        self.bids = _Side(descending=True)
        self.asks = _Side(descending=False)
        self.last_update_id = 0

    def reset(self, snapshot: DepthSnapshot) -> None:
        self.bids.clear()
        self.asks.clear()
        self._apply_levels(snapshot.bids, snapshot.asks)
        self.last_update_id = snapshot.last_update_id

    def apply(self, diff: DepthDiff) -> None:
        self._apply_levels(diff.bids, diff.asks)
        self.last_update_id = diff.final_update_id

    def _apply_levels(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        for price, qty in bids:
            self.bids.set(price, qty)
        for price, qty in asks:
            self.asks.set(price, qty)

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        return self.bids.top(n), self.asks.top(n)

    def depth_levels(self) -> int:
        """Levels on the thinner side: how deep a consumer can look on both sides."""
        return min(len(self.bids), len(self.asks))


class SyncState(enum.Enum):
    WAITING_FOR_DIFF = "waiting_for_diff"  # nothing buffered yet: a snapshot could not be validated
    WAITING_FOR_SNAPSHOT = "waiting_for_snapshot"  # buffering diffs while the snapshot is fetched
    BRIDGING = "bridging"  # book set from the snapshot, no diff applied yet
    SYNCED = "synced"


class Outcome(enum.Enum):
    BUFFERED = "buffered"  # kept for later; fetch a snapshot if none is in flight
    APPLIED = "applied"  # the book changed: publish it
    IGNORED = "ignored"  # an old diff (u <= book id): nothing to do
    STALE_SNAPSHOT = "stale_snapshot"  # the snapshot predates the buffer: fetch another
    GAP = "gap"  # continuity broke: the book was discarded, buffering again; fetch a new snapshot
    OVERFLOW = "overflow"  # too many diffs buffered: discarded, buffering again


class DepthSync:
    """The Binance spot sync procedure for one symbol, as a state machine with no I/O."""

    def __init__(self, symbol: str, max_buffered: int = 10_000) -> None:
        self.symbol = symbol
        self.book = LocalOrderBook()
        self.state = SyncState.WAITING_FOR_DIFF
        self.max_buffered = max_buffered
        self._buffer: list[DepthDiff] = []
        self._first_buffered_u = 0
        # Outcomes the caller may want to count.
        self.applied = 0
        self.ignored = 0
        self.gaps = 0
        self.stale_snapshots = 0

    @property
    def synced(self) -> bool:
        return self.state in (SyncState.BRIDGING, SyncState.SYNCED)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def restart(self) -> None:
        """Forget the book and the buffer (new connection, or a gap): the procedure begins again."""
        self.book = LocalOrderBook()
        self._buffer.clear()
        self.state = SyncState.WAITING_FOR_DIFF

    def on_diff(self, diff: DepthDiff) -> Outcome:
        if self.state in (SyncState.WAITING_FOR_DIFF, SyncState.WAITING_FOR_SNAPSHOT):
            return self._buffer_diff(diff)
        book_id = self.book.last_update_id
        if diff.final_update_id <= book_id:
            self.ignored += 1
            return Outcome.IGNORED
        if self.state is SyncState.BRIDGING:
            ok = diff.first_update_id <= book_id + 1
        else:
            ok = diff.first_update_id == book_id + 1
        if not ok:
            return self._gap(diff)
        self.book.apply(diff)
        self.state = SyncState.SYNCED
        self.applied += 1
        return Outcome.APPLIED

    def on_snapshot(self, snapshot: DepthSnapshot) -> Outcome:
        """Outcome APPLIED: the book is set (and caught up with the buffer). Others: see Outcome."""
        if self.state is not SyncState.WAITING_FOR_SNAPSHOT:
            # A late answer to a fetch made before a restart: the buffer it was meant for is gone.
            return Outcome.IGNORED
        if snapshot.last_update_id < self._first_buffered_u:
            self.stale_snapshots += 1
            return Outcome.STALE_SNAPSHOT
        pending = [d for d in self._buffer if d.final_update_id > snapshot.last_update_id]
        self._buffer.clear()
        self.book.reset(snapshot)
        self.state = SyncState.BRIDGING
        if pending and pending[0].first_update_id > snapshot.last_update_id + 1:
            return self._gap(pending[0])
        for diff in pending:
            outcome = self.on_diff(diff)
            if outcome is Outcome.GAP:
                return outcome
        return Outcome.APPLIED

    def _buffer_diff(self, diff: DepthDiff) -> Outcome:
        if len(self._buffer) >= self.max_buffered:
            self.restart()
            self._buffer_first(diff)
            return Outcome.OVERFLOW
        if not self._buffer:
            self._buffer_first(diff)
        else:
            self._buffer.append(diff)
        return Outcome.BUFFERED

    def _buffer_first(self, diff: DepthDiff) -> None:
        self._buffer.append(diff)
        self._first_buffered_u = diff.first_update_id
        self.state = SyncState.WAITING_FOR_SNAPSHOT

    def _gap(self, diff: DepthDiff) -> Outcome:
        """Discard the book; the diff that revealed the gap starts the new buffer."""
        self.gaps += 1
        self.restart()
        self._buffer_first(diff)
        return Outcome.GAP
