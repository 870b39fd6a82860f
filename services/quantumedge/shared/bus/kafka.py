"""The Kafka backend over kafka-python.

Producer: acks=all with idempotence (no duplicates on retry), keyed by symbol so one symbol's
events stay ordered in one partition (partitioning.SymbolPartitioner spreads the configured symbols).
Consumer: group = service name, auto-commit off; the consumer loop commits only after a batch was handled
and everything it produced was acked.
Security (SASL_SSL, credentials from Vault, plaintext refused unless allowed): kafka_security.py.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import (
    ClusterAuthorizationFailedError,
    CommitFailedError,
    IllegalGenerationError,
    KafkaError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownMemberIdError,
)

from quantumedge.shared import topics as topic_names
from quantumedge.shared.bus.base import Bus, BusError, BusUnavailable, Consumer, Record
from quantumedge.shared.bus.kafka_security import (
    TOPICS_NOT_VISIBLE,
    KafkaCredentials,
    KafkaSecurityError,
    check_transport,
    client_options,
)
from quantumedge.shared.bus.partitioning import SymbolPartitioner
from quantumedge.shared.bus.reachable import answers
from quantumedge.shared.config import KafkaSettings
from quantumedge.shared.logs import get_logger

log = get_logger(__name__)
# A record waits in the producer through a broker outage of any length (bounded by buffer_memory, not by a
# timer): one that expired would be lost after its input was committed. ~24.8 days, the client's int maximum.
_DELIVER_FOREVER_MS = 2**31 - 1
_POSITION_TAKES_TIMEOUT = "timeout_ms" in inspect.signature(KafkaConsumer.position).parameters


class KafkaBus(Bus):
    def __init__(
        self,
        settings: KafkaSettings,
        credentials: KafkaCredentials | None = None,
        *,
        plaintext_allowed: bool = False,
        symbols: Sequence[str] = (),
    ) -> None:
        """`credentials` (from kafka_security.load_credentials) are needed by every protocol but PLAINTEXT,
        which is refused unless settings.allow_plaintext (or plaintext_allowed: settings.behaviours).
        `symbols` (settings.symbols) take partitions in order (partitioning.py). Raises KafkaSecurityError."""
        check_transport(settings, credentials, plaintext_allowed=plaintext_allowed)
        self.settings = settings
        self.partitioner = SymbolPartitioner(symbols)
        # One TLS context for every client of this bus: built once, in memory.
        self._security = client_options(settings, credentials)
        self._prefix = settings.topic_prefix
        self._errors: list[str] = []
        self._errors_lock = threading.Lock()
        self._producer: KafkaProducer | None = None
        self._producer_lock = threading.Lock()
        # Monotonic time of the broker's newest acknowledgement: after an outage the probe passes as soon as
        # acks arrive again, rather than once the whole backlog queued during the outage is flushed.
        self._acked_at = 0.0

    # Test isolation and multi-tenant clusters: every physical topic name and group id carries the prefix.
    def physical(self, topic: str) -> str:
        return f"{self._prefix}{topic}"

    def logical(self, topic: str) -> str:
        return topic[len(self._prefix) :] if self._prefix and topic.startswith(self._prefix) else topic

    def _common(self) -> dict:
        return {
            "bootstrap_servers": self.settings.bootstrap.split(","),
            "client_id": self.settings.client_id,
            "request_timeout_ms": self.settings.request_timeout_ms,
            "reconnect_backoff_max_ms": self.settings.reconnect_backoff_max_ms,
            **self._security,
        }

    def admin(self) -> KafkaAdminClient:
        """An admin client with this bus's identity (close it after use)."""
        return KafkaAdminClient(**self._common())

    @property
    def producer(self) -> KafkaProducer:
        with self._producer_lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    acks="all",
                    enable_idempotence=True,
                    linger_ms=self.settings.linger_ms,
                    retries=2_147_483_647,
                    delivery_timeout_ms=_DELIVER_FOREVER_MS,
                    max_in_flight_requests_per_connection=5,
                    partitioner=self.partitioner,
                    **self._common(),
                )
            return self._producer

    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> None:
        future = self.producer.send(self.physical(topic), value=value, key=key, headers=list(headers.items()))
        future.add_callback(self._on_ack)
        future.add_errback(self._on_error, topic)

    def _on_ack(self, _metadata: object) -> None:
        self._acked_at = time.monotonic()

    def _on_error(self, exc: BaseException, topic: str) -> None:
        log.error("kafka publish failed", extra={"topic": topic, "error": repr(exc)})
        with self._errors_lock:
            self._errors.append(f"{topic}: {exc!r}")

    def flush(self, timeout_s: float = 10.0) -> None:
        """BusUnavailable when the broker did not acknowledge in time (the records stay queued: flush again);
        BusError when a record was refused, which waiting cannot mend."""
        self._flush_producer(timeout_s)
        with self._errors_lock:
            errors, self._errors = self._errors, []
        if errors:
            raise BusError("kafka publish not acknowledged: " + "; ".join(errors[:5]))

    def _flush_producer(self, timeout_s: float) -> None:
        if self._producer is not None:
            try:
                self._producer.flush(timeout=timeout_s)
            except KafkaError as exc:
                raise unavailable_or_fatal(exc, "kafka flush") from exc

    def probe(self, timeout_s: float = 1.0) -> None:
        """Does the broker answer: a TCP connect to a bootstrap address, then either every queued record
        acknowledged or, with a backlog still draining, at least one acknowledged during the wait (the broker
        is back; the backlog is the owner's flush's business). Refusals are left for that flush to report."""
        addresses = [a for a in self.settings.bootstrap.split(",") if a.strip()]
        if not any(answers(a, timeout_s) for a in addresses):
            raise BusUnavailable(f"no Kafka broker answers at {self.settings.bootstrap}")
        started = time.monotonic()
        try:
            self._flush_producer(timeout_s)
        except BusUnavailable:
            if self._acked_at < started:
                raise

    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = False) -> KafkaConsumer_:
        return KafkaConsumer_(self, group, list(topics), from_beginning)

    def read_from(self, topic: str, start: Mapping[int, int], timeout_s: float = 10.0) -> list[Record]:
        # earliest: an offset retention already deleted reads from the log start, never silently from the end.
        consumer = KafkaConsumer(
            enable_auto_commit=False, group_id=None, auto_offset_reset="earliest", **self._common()
        )
        try:
            name = self.physical(topic)
            parts = consumer.partitions_for_topic(name) or set()
            if not parts:
                return []
            tps = [TopicPartition(name, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            end = consumer.end_offsets(tps)
            for tp in tps:
                if start.get(tp.partition, 0) > 0:
                    consumer.seek(tp, min(start[tp.partition], end[tp]))
            out: list[Record] = []
            deadline = time.monotonic() + timeout_s
            while any(consumer.position(tp) < end[tp] for tp in tps):
                if time.monotonic() > deadline:
                    raise BusError(f"timed out reading {topic} to its end")
                for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                    out.extend(self._record(r) for r in records)
            return sorted(out, key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        finally:
            consumer.close()

    def _record(self, r: ConsumerRecord) -> Record:
        return Record(
            topic=self.logical(r.topic),
            partition=r.partition,
            offset=r.offset,
            key=r.key,
            value=r.value,
            headers={k: v for k, v in (r.headers or [])},
            timestamp_ms=r.timestamp,
        )

    def ensure_topics(self, names: Iterable[str] | None = None) -> None:
        """Create the topics (logical `names`, default all) that this principal cannot see yet.

        On a cluster with ACLs a service sees only the topics it may use and may create none: a missing one
        then stops it with a message saying who creates topics and ACLs, instead of a bare authorization error.
        """
        specs = {spec.name: spec for spec in topic_names.ALL}
        chosen = [specs[name] for name in (names or specs)]
        admin = self.admin()
        try:
            existing = set(admin.list_topics())
            wanted = {
                self.physical(spec.name): {
                    "num_partitions": self.settings.partitions,
                    "replication_factor": self.settings.replication_factor,
                    "configs": topic_configs(spec),
                }
                for spec in chosen
                if self.physical(spec.name) not in existing
            }
            if wanted:
                try:
                    # Another service may create the same topics at the same moment: that is fine.
                    with contextlib.suppress(TopicAlreadyExistsError):
                        admin.create_topics(wanted, timeout_ms=30_000, wait_for_metadata=True)
                except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError):
                    raise KafkaSecurityError(
                        TOPICS_NOT_VISIBLE,
                        f"kafka topics {', '.join(sorted(wanted))} are not visible to this principal and it may not "
                        "create them: create topics and ACLs with `quantumedge topics --acls` (admin credentials) "
                        "or the chart's Strimzi KafkaTopic/KafkaUser resources",
                    ) from None
                log.info("kafka topics created", extra={"topics": sorted(wanted)})
        finally:
            admin.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)
            self._producer = None


def unavailable_or_fatal(exc: KafkaError, what: str) -> BusError:
    """The client's own split: a retriable error (timeout, no connection, coordinator moving) is an outage to
    wait out; anything else (authorization, authentication, a refused request) is fatal."""
    cls = BusUnavailable if getattr(exc, "retriable", False) else BusError
    return cls(f"{what} failed: {exc!r}")


def topic_configs(spec: topic_names.TopicSpec) -> dict[str, str]:
    """Broker-side topic configs: compaction for state topics, a retention where the spec sets one."""
    configs = {"cleanup.policy": "compact"} if spec.compacted else {}
    if spec.retention_ms is not None:
        configs["retention.ms"] = str(spec.retention_ms)
    if spec.segment_ms is not None:
        configs["segment.ms"] = str(spec.segment_ms)
    return configs


class KafkaConsumer_(Consumer):  # noqa: N801 - distinct from kafka-python's KafkaConsumer it wraps
    def __init__(self, bus: KafkaBus, group: str, topics: list[str], from_beginning: bool) -> None:
        self.bus = bus
        self._topics = [bus.physical(t) for t in topics]
        self._consumer = KafkaConsumer(
            group_id=bus.physical(group),
            enable_auto_commit=False,
            auto_offset_reset="earliest" if from_beginning else "latest",
            max_poll_interval_ms=300_000,
            # A dead member is noticed in seconds, so a restarted service gets its partitions back fast. A member
            # learns of a rebalance on its next heartbeat: at 1 s (a third of Kafka's own 3 s default) the join of
            # risk's and execution's second consumer at start costs about 1 s, not 3 (SERVING 6-11 s -> 4.3 s).
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            **bus._common(),
        )
        # Know every topic's partitions before joining the group: a member that joins first can be handed
        # an empty assignment ("No partition metadata") and may not rejoin until the next metadata refresh.
        for topic in self._topics:
            self._consumer.partitions_for_topic(topic)
        self._consumer.subscribe(self._topics)

    def poll(self, timeout_s: float = 0.5, max_records: int = 500) -> list[Record]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000), max_records=max_records)
        except KafkaError as exc:
            raise unavailable_or_fatal(exc, "kafka poll") from exc
        out = [self.bus._record(r) for records in batches.values() for r in records]
        out.sort(key=lambda r: (r.timestamp_ms, r.partition, r.offset))
        return out

    def wait_assigned(self, timeout_s: float = 30.0, resubscribe_after_s: float = 5.0) -> None:
        """Poll until the group gave this member its partitions, so 'latest' is fixed before producers start.

        An empty assignment that persists is retried by subscribing again (a fresh join with fresh metadata)
        rather than waiting for the client's next metadata refresh, minutes away."""
        deadline = time.monotonic() + timeout_s
        retry_at = time.monotonic() + resubscribe_after_s
        while not self._covered() and time.monotonic() < deadline:
            if self._consumer.poll(timeout_ms=100, max_records=1, update_offsets=False) and self._covered():
                break
            if not self._covered() and time.monotonic() >= retry_at:
                # Empty, or missing a topic whose partitions the client did not know yet when it joined.
                log.warning("partitions not all assigned yet; joining the group again", extra={"topics": self._topics})
                self._consumer.unsubscribe()
                for topic in self._topics:
                    self._consumer.partitions_for_topic(topic)
                self._consumer.subscribe(self._topics)
                retry_at = time.monotonic() + resubscribe_after_s
        if not self._consumer.assignment():
            raise BusError(f"consumer got no partition assignment for {', '.join(self._topics)} in {timeout_s:.0f} s")
        if not self._covered():  # other members may hold the rest (more members than partitions)
            log.warning("consumer holds partitions of only some topics", extra={"topics": self._topics})
        # The client resolves "latest" asynchronously: ask for every position now, so a record published once
        # this returns is never skipped as "before latest".
        for tp in self._consumer.assignment():
            self._consumer.position(tp, timeout_ms=int(max(1.0, deadline - time.monotonic()) * 1000))

    def _covered(self) -> bool:
        return {tp.topic for tp in self._consumer.assignment()} >= set(self._topics)

    def commit(self, timeout_s: float = 5.0) -> None:
        try:
            self._consumer.commit(timeout_ms=int(timeout_s * 1000))
        except (CommitFailedError, RebalanceInProgressError, IllegalGenerationError, UnknownMemberIdError) as exc:
            # The group is rebalancing (a slow heartbeat, a member joining): the next poll rejoins, and whatever
            # was not committed is delivered again, which the handlers' idempotency makes harmless. Killing the
            # consumer loop over it would stop the service instead.
            log.warning("offset commit skipped during a rebalance", extra={"error": type(exc).__name__})
        except KafkaError as exc:  # the broker is down (a timeout): nothing committed, the loop retries
            raise unavailable_or_fatal(exc, "kafka offset commit") from exc

    def lag(self) -> dict[tuple[str, int], int]:
        # highwater() is what the last fetch response said (no request); position() is local once fetched.
        out: dict[tuple[str, int], int] = {}
        for tp in self._consumer.assignment():
            try:  # a rebalance between assignment() and these calls makes them assert: skip that partition
                high = self._consumer.highwater(tp)
                position = self._consumer.position(tp, timeout_ms=0) if _POSITION_TAKES_TIMEOUT else None
            except (KafkaError, AssertionError):
                continue
            if high is None:
                continue
            if position is None:
                continue
            out[(self.bus.logical(tp.topic), tp.partition)] = max(0, high - position)
        return out

    def close(self) -> None:
        self._consumer.close()
