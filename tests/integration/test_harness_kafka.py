"""The Kafka test harness gives a real broker with the semantics the bus relies on.

Real Apache Kafka (env server, testcontainers or the local KRaft broker), real kafka-python clients:
idempotent acks=all producer, keyed partitioning, consumer groups with manual commit and resume.
"""

from __future__ import annotations

import shutil
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tests.harness import HarnessError, LocalKafka
from tools.harness.kafka import new_cluster_id

pytestmark = pytest.mark.integration

KEYS = [f"SYM{i}" for i in range(6)]
POLL_DEADLINE_S = 60.0  # an upper bound against hangs, not a speed assertion


@pytest.fixture
def producer(kafka_bootstrap: str) -> Iterator[KafkaProducer]:
    prod = KafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30000,
    )
    yield prod
    prod.close(timeout=10)


def make_consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def send_keyed(producer: KafkaProducer, topic: str, start: int, count: int) -> list[tuple[str, int, int, int]]:
    """Send `count` messages round-robin over KEYS; value = sequence number. Returns (key, seq, partition, offset)."""
    futures = []
    for seq in range(start, start + count):
        key = KEYS[seq % len(KEYS)]
        futures.append((key, seq, producer.send(topic, key=key.encode(), value=str(seq).encode())))
    producer.flush(timeout=30)
    sent = []
    for key, seq, future in futures:
        meta = future.get(timeout=30)
        sent.append((key, seq, meta.partition, meta.offset))
    return sent


def poll_until(consumer: KafkaConsumer, count: int) -> list[ConsumerRecord]:
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + POLL_DEADLINE_S
    while len(records) < count and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    return records


def test_keyed_messages_land_on_one_partition_per_key_in_order(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    producer: KafkaProducer,
    unique_name: Callable[[str], str],
) -> None:
    topic = kafka_topic_factory("harness-keys", partitions=3)
    sent = send_keyed(producer, topic, 0, 60)

    partitions_by_key: dict[str, set[int]] = defaultdict(set)
    for key, _seq, partition, _offset in sent:
        partitions_by_key[key].add(partition)
    assert all(len(parts) == 1 for parts in partitions_by_key.values()), partitions_by_key
    assert len({p for parts in partitions_by_key.values() for p in parts}) > 1, "all keys hashed to one partition"
    # Idempotent acks=all producer: each partition's offsets are dense, no duplicates, no gaps.
    offsets_by_partition: dict[int, list[int]] = defaultdict(list)
    for _key, _seq, partition, offset in sent:
        offsets_by_partition[partition].append(offset)
    for offsets in offsets_by_partition.values():
        assert offsets == list(range(len(offsets)))

    consumer = make_consumer(kafka_bootstrap, topic, unique_name("grp"))
    try:
        records = poll_until(consumer, len(sent))
    finally:
        consumer.close()
    assert len(records) == len(sent)
    seqs_by_key: dict[str, list[int]] = defaultdict(list)
    for record in records:
        assert record.partition in partitions_by_key[record.key.decode()]
        seqs_by_key[record.key.decode()].append(int(record.value))
    for key, seqs in seqs_by_key.items():
        assert seqs == sorted(seqs), f"order broken for {key}"
    assert sorted(s for seqs in seqs_by_key.values() for s in seqs) == list(range(60))


def test_manual_commit_then_second_consumer_resumes_after_committed_offsets(
    kafka_bootstrap: str,
    kafka_topic_factory: Callable[..., str],
    producer: KafkaProducer,
    unique_name: Callable[[str], str],
) -> None:
    topic = kafka_topic_factory("harness-resume", partitions=3)
    group = unique_name("grp")
    first_batch = send_keyed(producer, topic, 0, 30)

    first = make_consumer(kafka_bootstrap, topic, group)
    try:
        seen = poll_until(first, len(first_batch))
        assert len(seen) == len(first_batch)
        first.commit()
    finally:
        first.close()

    end_offsets: dict[int, int] = defaultdict(int)
    for _key, _seq, partition, offset in first_batch:
        end_offsets[partition] = max(end_offsets[partition], offset + 1)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-admin")
    try:
        committed = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    assert {tp.partition: om.offset for tp, om in committed.items() if tp.topic == topic} == {
        p: end_offsets.get(p, 0) for p in range(3) if p in end_offsets
    }

    second_batch = send_keyed(producer, topic, 100, 12)
    second = make_consumer(kafka_bootstrap, topic, group)
    try:
        resumed = poll_until(second, len(second_batch))
        # Nothing more should arrive: a short extra poll would surface re-delivered old records.
        resumed.extend(r for batch in second.poll(timeout_ms=1000).values() for r in batch)
        second.commit()
        positions = {p: second.position(TopicPartition(topic, p)) for p in range(3)}
    finally:
        second.close()
    assert sorted(int(r.value) for r in resumed) == list(range(100, 112))
    for record in resumed:
        assert record.offset >= end_offsets.get(record.partition, 0)
    expected_end = dict(end_offsets)
    for _key, _seq, partition, offset in second_batch:
        expected_end[partition] = max(expected_end.get(partition, 0), offset + 1)
    assert positions == {p: expected_end.get(p, 0) for p in range(3)}


@pytest.mark.skipif(shutil.which("java") is None, reason="the local broker needs java")
def test_local_broker_bad_config_fails_with_the_reason() -> None:
    broker = LocalKafka(extra_config={"num.partitions": "not-a-number"}, start_timeout_s=60)
    with pytest.raises(HarnessError) as excinfo:
        broker.start()
    message = str(excinfo.value)
    assert "Kafka" in message
    assert "num.partitions" in message
    broker.stop()


def test_cluster_ids_never_look_like_an_option() -> None:
    # One id in 64 would start with "-" and the storage tool would take it for a flag.
    ids = {new_cluster_id() for _ in range(5000)}
    assert len(ids) == 5000
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
