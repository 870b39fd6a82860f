"""The in-process bus keeps Kafka's semantics: key -> partition, offsets, groups, commits."""

from __future__ import annotations

from kafka.partitioner.default import murmur2

from quantumedge.shared.bus import MemoryBus
from quantumedge.v1 import market_pb2


def _tick(symbol: str, seq: int) -> market_pb2.MarketEvent:
    return market_pb2.MarketEvent(symbol=symbol, sequence=seq, trade=market_pb2.Trade(price=1.0, quantity=1.0))


def test_same_key_same_partition_as_kafka() -> None:
    bus = MemoryBus(partitions=3)  # no symbols configured: Kafka's own murmur2 hash
    for i in range(20):
        bus.publish("t", "BTCUSDT", _tick("BTCUSDT", i))
    records = bus.read_all("t")
    assert {r.partition for r in records} == {(murmur2(b"BTCUSDT") & 0x7FFFFFFF) % 3}
    assert [market_pb2.MarketEvent.FromString(r.value).sequence for r in records] == list(range(20))


def test_group_resumes_from_committed_offset_only() -> None:
    bus = MemoryBus()
    consumer = bus.consumer("g", ["t"], from_beginning=True)
    for i in range(5):
        bus.publish("t", "A", _tick("A", i))
    first = consumer.poll(0.1, max_records=3)
    assert len(first) == 3
    consumer.commit()
    consumer.poll(0.1)  # read but never committed: must come back to the next member
    consumer.close()

    again = bus.consumer("g", ["t"], from_beginning=True).poll(0.1)
    assert [r.offset for r in again] == [3, 4]


def test_members_of_a_group_split_partitions_and_groups_are_independent() -> None:
    bus = MemoryBus(partitions=4)
    a = bus.consumer("g", ["t"], from_beginning=True)
    b = bus.consumer("g", ["t"], from_beginning=True)
    other = bus.consumer("h", ["t"], from_beginning=True)
    for i in range(40):
        bus.publish("t", f"S{i}", _tick(f"S{i}", i))
    got_a, got_b = a.poll(0.1, 1000), b.poll(0.1, 1000)
    assert len(got_a) + len(got_b) == 40
    assert not {r.partition for r in got_a} & {r.partition for r in got_b}
    assert len(other.poll(0.1, 1000)) == 40


def test_new_group_without_from_beginning_starts_at_the_end() -> None:
    bus = MemoryBus()
    bus.publish("t", "A", _tick("A", 0))
    late = bus.consumer("late", ["t"])
    bus.publish("t", "A", _tick("A", 1))
    assert [market_pb2.MarketEvent.FromString(r.value).sequence for r in late.poll(0.1)] == [1]


def test_trace_context_travels_in_headers() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    from quantumedge.shared.telemetry import extract_context

    tracer = TracerProvider().get_tracer("test")
    bus = MemoryBus()
    with tracer.start_as_current_span("tick") as span:
        bus.publish("t", "A", _tick("A", 0))
        trace_id = span.get_span_context().trace_id
    record = bus.read_all("t")[0]
    assert "traceparent" in record.headers
    parent = trace.get_current_span(extract_context(record.headers)).get_span_context()
    assert parent.trace_id == trace_id


def test_a_poll_of_a_backlog_spans_every_topic_in_order() -> None:
    """A backlog on several topics comes back interleaved, as a Kafka fetch spans partitions, not one topic
    drained before the next; each partition's records stay in their order."""
    bus = MemoryBus(partitions=1)
    consumer = bus.consumer("g", ["a", "b", "c"], from_beginning=True)
    for i in range(300):
        for topic in ("a", "b", "c"):
            bus.publish(topic, "K", _tick("K", i))
    seen: dict[str, list[int]] = {"a": [], "b": [], "c": []}
    first = consumer.poll(0.1, max_records=90)
    assert len(first) == 90 and {r.topic for r in first} == {"a", "b", "c"}
    records = first
    while batch := consumer.poll(0.1, max_records=90):
        records += batch
    for r in records:
        seen[r.topic].append(market_pb2.MarketEvent.FromString(r.value).sequence)
    assert seen == {t: list(range(300)) for t in seen}


def test_read_from_starts_each_named_partition_at_its_offset_and_others_at_the_beginning() -> None:
    bus = MemoryBus(partitions=3)
    for i in range(30):
        bus.publish("t", f"k{i}", _tick("A", i))
    every = bus.read_all("t")
    parts = sorted({r.partition for r in every})
    later = bus.read_from("t", {parts[0]: 2, parts[1]: 10**6})
    assert {(r.partition, r.offset) for r in later} == {
        (r.partition, r.offset) for r in every if (r.partition == parts[0] and r.offset >= 2) or r.partition == parts[2]
    }
