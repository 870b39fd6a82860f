"""Ordering and coalescing a consumer's polled batch of market records.

Order (exchange_order): a poll hands records over partition by partition (Kafka gives no order across topics or
partitions, nor does the in-process bus), so a later book of a symbol could be applied before an earlier trade
and a paper stop would fill on the wrong book. The batch is therefore merged by exchange time, as the backtest
applies events. The merge never reorders one partition's records (the broker's order is the producer's, which
per stream is also the sequence order), ties keep arrival order, and a record without a usable exchange time
(none, out of range, undecodable) takes the time of the record before it in its partition, so it stays where
its stream put it. Receive time is not used for those: it is the local clock, and comparing it with the other
records' exchange times would move the record by the feed's latency and clock skew. Only within a poll: what a
later poll brings is applied after it (no hold-back buffer; that would delay every fill).

Coalescing (latest_books): when a batch holds several tops of book (or depth snapshots) of one symbol, only
the newest matters to a guard or a paper fill, so the older ones are skipped (and committed with the batch).
Trades are never coalesced: each one may fill a resting order.

Only records that decode as a valid top_of_book / depth are ever skipped: a gap, an undecodable or an invalid
record is handled in place (dead-lettered with its reason), and so is a record without a key. A trade of the
symbol, a gap or such a record is a barrier: books before it are not replaced by books after it, so every trade
meets the book it met before. latest_books keeps the order it is given (market_batch orders first).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from google.protobuf.message import DecodeError

from quantumedge.shared import bounds, topics
from quantumedge.shared.bus.base import Record
from quantumedge.v1 import market_pb2

COALESCED = {topics.BOOK: "top_of_book", topics.DEPTH: "depth"}


EventOf = Callable[[Record], market_pb2.MarketEvent | None]


def parse(record: Record) -> market_pb2.MarketEvent | None:
    """The record's market event, or None when it has none or does not decode."""
    if not record.value:
        return None
    try:
        return market_pb2.MarketEvent.FromString(record.value)
    except DecodeError:
        return None


def _replaceable(record: Record, event: market_pb2.MarketEvent | None) -> bool:
    """A valid book/depth event under a key: safe to skip when a newer one of its symbol follows."""
    if not record.key or event is None:
        return False
    return event.WhichOneof("payload") == COALESCED[record.topic] and bounds.check_market(event) is None


def latest_books(records: list[Record], event_of: EventOf = parse) -> list[Record]:
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
            if not _replaceable(record, event_of(record)):
                pending.pop((record.topic, key), None)
                continue
            before = pending.get((record.topic, key))
            if before is not None:
                keep[before] = False
            pending[(record.topic, key)] = i
    return [r for r, k in zip(records, keep, strict=True) if k]


def _exchange_time(event: market_pb2.MarketEvent | None) -> int | None:
    """The event's exchange time, or None when it has no usable one (no event, unset, out of range)."""
    t = event.exchange_time_ns if event is not None else 0
    return t if t and bounds.time_ns("exchange_time_ns", t) is None else None


def exchange_order(records: list[Record], event_of: EventOf = parse) -> list[Record]:
    """The batch merged by exchange time, each partition's records in their arrival order (module docstring)."""
    runs: dict[tuple[str, int], list[tuple[int, int, Record]]] = {}
    for i, record in enumerate(records):
        run = runs.setdefault((record.topic, record.partition), [])
        t = _exchange_time(event_of(record))
        if t is None:  # keeps its place in its stream: as late as the record before it, else first
            t = run[-1][0] if run else 0
        run.append((t, i, record))
    # (time, arrival index) is unique, so records are never compared; merge takes the earliest head each time.
    return [record for _, _, record in heapq.merge(*runs.values())]


def market_batch(records: list[Record]) -> list[Record]:
    """A polled batch of market records as execution applies it: in exchange-time order, superseded books and
    depth snapshots dropped. Each record is decoded once for both steps."""
    events = {id(record): parse(record) for record in records}

    def event_of(record: Record) -> market_pb2.MarketEvent | None:
        return events[id(record)]

    return latest_books(exchange_order(records, event_of), event_of)
