"""Coalescing a consumer's backlog of books: when a poll returns several tops of book (or depth snapshots) of one
symbol, only the newest matters to a guard or a paper fill, so the older ones are skipped (and committed with
the batch). Trades are never coalesced: each one may fill a resting order.

Only records that decode as a valid top_of_book / depth are ever skipped: a gap, an undecodable or an invalid
record is handled in place (dead-lettered with its reason), and so is a record without a key. A trade of the
symbol, a gap or such a record is a barrier: books before it are not replaced by books after it, so every trade
meets the book it met before. Order is the batch's own (what the loop would have applied), nothing is reordered.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError

from quantumedge.shared import bounds, topics
from quantumedge.shared.bus.base import Record
from quantumedge.v1 import market_pb2

COALESCED = {topics.BOOK: "top_of_book", topics.DEPTH: "depth"}


def _replaceable(record: Record) -> bool:
    """A valid book/depth event under a key: safe to skip when a newer one of its symbol follows."""
    if not record.key or not record.value:
        return False
    try:
        event = market_pb2.MarketEvent.FromString(record.value)
    except DecodeError:
        return False
    return event.WhichOneof("payload") == COALESCED[record.topic] and bounds.check_market(event) is None


def latest_books(records: list[Record]) -> list[Record]:
    """The batch with every book/depth record dropped that a newer one of its (topic, symbol) replaces before
    any barrier (a trade of that symbol, a gap, an unusable record)."""
    keep = [True] * len(records)
    pending: dict[tuple[str, bytes], int] = {}
    for i, record in enumerate(records):
        key = record.key or b""
        if record.topic == topics.TRADES:
            for topic in COALESCED:
                pending.pop((topic, key), None)
        elif record.topic in COALESCED:
            if not _replaceable(record):
                pending.pop((record.topic, key), None)
                continue
            before = pending.get((record.topic, key))
            if before is not None:
                keep[before] = False
            pending[(record.topic, key)] = i
    return [r for r, k in zip(records, keep, strict=True) if k]
