"""The consumer loop every service runs: decode, handle, dead-letter what fails, then commit.

At-least-once end to end: offsets are committed only after every record of a batch was handled
(or dead-lettered) and everything the handlers published was acknowledged (bus.flush). Handlers
must therefore be idempotent, which the domain guarantees with ids derived from the input.

A broker outage is waited out, never exited: a flush or commit that times out (BusUnavailable) is retried
with backoff until the broker answers, and while the bus is down (bus.outage, for the whole process) no new
record is handled, so risk approves nothing and execution sends nothing it could not report. Any other
BusError (authorization, a refused record) stops the loop, and the service with it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from google.protobuf.message import DecodeError, Message
from opentelemetry import trace

from quantumedge.shared import topics
from quantumedge.shared.backoff import Backoff
from quantumedge.shared.bounds import Problem
from quantumedge.shared.bus.base import Bus, BusUnavailable, Record
from quantumedge.shared.logs import get_logger
from quantumedge.shared.observe import Gauges
from quantumedge.shared.telemetry import extract_context, meter, tracer
from quantumedge.v1 import dlq_pb2

log = get_logger(__name__)
Handler = Callable[[Message, Record], None]
# Called for every refused record after it was dead-lettered: (record, reason code, detail). Services audit.
RefusalHook = Callable[[Record, str, str], None]
TOMBSTONE = "tombstone"
# How long one flush may wait for acknowledgements before the loop calls the broker down and backs off.
_SETTLE_TIMEOUT_S = 5.0


class _Stopped(Exception):  # noqa: N818 - control flow: the loop stopped while a handler waited out an outage
    pass


class Refused(Exception):  # noqa: N818 - a refusal, not an error: the record is well-formed but not acceptable
    """Raised by a handler for a record it must not act on (unsigned, forged, replayed, stale...): the loop
    dead-letters it with `code` and calls its refusal hook; nothing else happens."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def admit(problem: Problem | None) -> None:
    """Refuse a record whose values failed the boundary check (shared/bounds): dead-lettered with the code."""
    if problem is not None:
        raise Refused(problem.code, problem.detail)


_meter = meter("bus")
_handled = _meter.create_counter("qe.bus.records", description="records handled by consumer loops")
_dead = _meter.create_counter("qe.bus.dead_letters", description="records sent to the dead-letter topic")
_lag = _meter.create_histogram("qe.bus.record_age", unit="ms", description="age of records when handled")
_loops = Gauges("bus")
_loops.gauge(
    "qe.bus.consumer_lag",
    lambda loop: [
        (lag, {"group": loop.group, "topic": topic, "partition": part}) for (topic, part), lag in loop.lag.items()
    ],
    description="records behind the end of each partition this consumer holds",
)


def decode(topic: str, value: bytes) -> Message:
    """Parse a record value with its topic's protobuf type; DecodeError when it is not one."""
    cls = topics.MESSAGE_TYPES.get(topic)
    if cls is None:
        raise DecodeError(f"no message type registered for topic {topic}")
    msg = cls()
    msg.ParseFromString(value)
    missing = topics.missing_fields(msg)
    if missing:
        # Bytes that happen to parse are not a valid event: without these fields nothing can use it.
        raise DecodeError(f"{cls.__name__} without {', '.join(missing)}")
    return msg


def dead_letter(
    bus: Bus, record: Record, group: str, reason: str, error: BaseException | None, reason_code: str = ""
) -> None:
    """Publish the original bytes and the reason to dlq.v1, keyed like the original."""
    letter = dlq_pb2.DeadLetter(
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
        key=record.key or b"",
        value=record.value,
        reason=reason,
        error_type=type(error).__name__ if error else "",
        consumer_group=group,
        time_ns=time.time_ns(),
        headers={k: v.decode(errors="replace") for k, v in record.headers.items()},
        reason_code=reason_code,
    )
    bus.publish(topics.DLQ, record.key, letter)
    _dead.add(1, {"topic": record.topic, "group": group})
    log.warning(
        "record dead-lettered",
        extra={
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "reason": reason,
            "code": reason_code,
        },
    )


class ConsumerLoop:
    """One consumer-group member in its own thread, dispatching each topic to its handler."""

    def __init__(
        self,
        bus: Bus,
        group: str,
        handlers: Mapping[str, Handler],
        from_beginning: bool = False,
        poll_timeout_s: float = 0.2,
        max_records: int = 500,
        on_refused: RefusalHook | None = None,
        probe_every_s: float = 1.0,
        thread_name: str = "",
        coalesce: Callable[[list[Record]], list[Record]] | None = None,
    ) -> None:
        """Several loops may share a group (one member each): execution's decisions and its market data.
        `coalesce`, when given, may reorder a polled batch (execution: by exchange time) and drop records that
        later ones make moot (bus/coalesce.py); dropped ones are committed with the batch, never handled."""
        self.bus = bus
        self.coalesce = coalesce
        self.coalesced = 0
        self.thread_name = thread_name or f"{group}-consumer"
        # An idle loop commits this often, so it notices an outage (and its end) with no traffic too.
        self.probe_every_s = probe_every_s
        self._backoff = Backoff(base_s=0.2, cap_s=2.0)
        self.on_refused = on_refused
        self.group = group
        self.handlers = dict(handlers)
        self.from_beginning = from_beginning
        self.poll_timeout_s = poll_timeout_s
        self.max_records = max_records
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tracer = tracer(group)
        self.handled = 0
        self.dead_lettered = 0
        self.refused = 0
        self.retried_after_outage = 0  # handler runs repeated because its own write found the broker down
        self.error: BaseException | None = None
        # Per (topic, partition), refreshed by the polling thread after each poll; read by the metrics gauge.
        self.lag: dict[tuple[str, int], int] = {}
        # True once a poll came back empty, until the next one returns records: the consumer holds nothing
        # unhandled, so a pause in arrivals is a quiet market, not this thread stalling on a backlog.
        self.caught_up = False

    def start(self) -> None:
        """Join the group (waiting for the partition assignment on Kafka), then consume in a thread."""
        self._consumer = self.bus.consumer(self.group, list(self.handlers), from_beginning=self.from_beginning)
        wait = getattr(self._consumer, "wait_assigned", None)
        if wait is not None:
            wait()
        self._commit_start()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        _loops.add_owner(self)
        self._thread.start()

    def _commit_start(self) -> None:
        """Commit the starting positions at once: when another member of the group joins next (execution runs
        two), the rebalance would otherwise reset a group with no offsets to "latest" a second time and skip
        what was published in between. An outage here is left to the loop's first settle."""
        try:
            self._consumer.commit()
        except BusUnavailable as exc:
            log.warning("starting offsets not committed yet", extra={"group": self.group, "error": str(exc)})

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        try:
            settled = time.monotonic()
            while not self._stop.is_set():
                if self.bus.outage.down:
                    self._settle()
                records = self._poll()
                self.lag = self._lag()
                self.caught_up = not records
                if not records and time.monotonic() - settled < self.probe_every_s:
                    continue
                if self.coalesce is not None and len(records) > 1:
                    kept = self.coalesce(records)
                    self.coalesced += len(records) - len(kept)
                    records = kept
                for record in records:
                    if self.bus.outage.down:  # nothing new is acted on while its outputs cannot be written
                        self._settle(commit=False)  # the batch's later records are not handled yet
                    self._handle(record)
                # Everything the handlers produced must be acknowledged before the inputs are committed.
                self._settle()
                settled = time.monotonic()
        except BaseException as exc:  # the loop must never die silently: record it, log it, surface it in status
            self.error = exc
            log.error("consumer loop stopped", extra={"group": self.group, "error": f"{type(exc).__name__}: {exc}"})
        finally:
            _loops.remove_owner(self)
            self._consumer.close()

    def _poll(self) -> list[Record]:
        try:
            return self._consumer.poll(self.poll_timeout_s, self.max_records)
        except BusUnavailable as exc:
            self.bus.outage.failed(self._source, exc)
            self._stop.wait(self._backoff.next_delay())
            return []

    @property
    def _source(self) -> str:
        return f"consumer {self.group}"

    def _settle(self, commit: bool = True) -> None:
        """Flush what was published, then commit, retrying through an outage until both succeed and no part of
        the process still sees the broker down (or the loop is stopped: then nothing is committed). Mid-batch
        (commit=False) only the flush is waited for: a commit there would cover records not yet handled, which
        a crash before their turn would lose."""
        while not self._stop.is_set():
            try:
                self.bus.flush(_SETTLE_TIMEOUT_S)
                if commit:
                    self._consumer.commit()
            except BusUnavailable as exc:
                self.bus.outage.failed(self._source, exc)
                self._stop.wait(self._backoff.next_delay())
                continue
            self.bus.outage.ok(self._source)
            self._backoff.reset()
            if self.bus.outage.wait_up(self._backoff.next_delay()):
                return

    def _lag(self) -> dict[tuple[str, int], int]:
        """The consumer's lag; a figure for the metrics only, so it never stops the loop."""
        try:
            return self._consumer.lag()
        except Exception:
            log.debug("consumer lag unavailable", extra={"group": self.group}, exc_info=True)
            return self.lag

    def _handle(self, record: Record) -> None:
        handler = self.handlers.get(record.topic)
        if handler is None:
            return
        if not record.value:
            # A tombstone: on compacted control.v1 it would erase the halt or limits state. Never an event.
            self._refuse(record, Refused(TOMBSTONE, f"tombstone (empty value) under key {record.key!r}"))
            return
        try:
            message = decode(record.topic, record.value)
        except (DecodeError, ValueError) as exc:
            self.dead_lettered += 1
            dead_letter(self.bus, record, self.group, f"undecodable {record.topic} payload: {exc}", exc)
            return
        ctx = extract_context(record.headers)
        with self._tracer.start_as_current_span(
            f"{record.topic} process", context=ctx, kind=trace.SpanKind.CONSUMER
        ) as span:
            span.set_attribute("messaging.destination.name", record.topic)
            span.set_attribute("messaging.kafka.partition", record.partition)
            span.set_attribute("messaging.kafka.offset", record.offset)
            try:
                self._call(handler, message, record)
                self.handled += 1
                _handled.add(1, {"topic": record.topic, "group": self.group})
                if record.timestamp_ms:
                    _lag.record(max(0.0, time.time() * 1000 - record.timestamp_ms), {"topic": record.topic})
            except _Stopped:
                return  # stopped during an outage: not handled, not committed, delivered again after a restart
            except Refused as refusal:
                span.set_attribute("qe.refused", refusal.code)
                self._refuse(record, refusal)
            except Exception as exc:
                span.record_exception(exc)
                self.dead_lettered += 1
                dead_letter(self.bus, record, self.group, f"handler failed: {type(exc).__name__}: {exc}", exc)

    def _call(self, handler: Handler, message: Message, record: Record) -> None:
        """Run the handler; when its own durable write finds the broker down (BusUnavailable), wait the outage
        out and run it again. A record is never dead-lettered because the broker was down: handlers are
        idempotent on redelivery, so running one again is what a redelivery after a restart would do."""
        while True:
            try:
                handler(message, record)
                return
            except BusUnavailable as exc:
                self.bus.outage.failed(self._source, exc)
                self.retried_after_outage += 1
                log.warning("handler waits out a broker outage", extra={"topic": record.topic, "error": str(exc)})
                self._settle(commit=False)
                if self._stop.is_set():
                    raise _Stopped from exc

    def _refuse(self, record: Record, refusal: Refused) -> None:
        self.dead_lettered += 1
        self.refused += 1
        dead_letter(self.bus, record, self.group, f"refused: {refusal}", refusal, refusal.code)
        if self.on_refused is not None:
            try:
                self.on_refused(record, refusal.code, refusal.detail)
            except Exception:
                # The dead letter is out; a failing audit must not stop the loop (it is logged loudly).
                log.exception("refusal hook failed", extra={"topic": record.topic, "code": refusal.code})
