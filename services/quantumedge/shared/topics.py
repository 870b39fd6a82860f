"""Kafka topic names (`<producer>.<event>.v1`) and the protobuf type each one carries."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from quantumedge.v1 import control_pb2, dlq_pb2, execution_pb2, market_pb2, risk_pb2, signal_pb2

TRADES = "ingest.trades.v1"
BOOK = "ingest.book.v1"
DEPTH = "ingest.depth.v1"
SIGNALS = "inference.signals.v1"
# Signals of shadow models (registry.py): scored beside the promoted ones, compared offline, never traded.
# No service reads it (risk least of all); operators' `quantumedge models compare` does, with their own identity.
SHADOW_SIGNALS = "inference.shadow_signals.v1"
DECISIONS = "risk.decisions.v1"
REPORTS = "execution.reports.v1"
EXEC_STATE = "execution.state.v1"
# Risk's signed ledger checkpoint (compacted, one key): a restart restores it and replays only the reports after it.
RISK_CHECKPOINT = "risk.checkpoint.v1"
CONTROL = "control.v1"
DLQ = "dlq.v1"
# Every audit record (allowed and refused calls, automatic halts). Not compacted, kept by retention: audit
# keys are unique, so on the compacted control.v1 they would grow the topic that every start-up reads whole.
AUDIT = "audit.v1"

MARKET = (TRADES, BOOK, DEPTH)

MESSAGE_TYPES: dict[str, type[Message]] = {
    TRADES: market_pb2.MarketEvent,
    BOOK: market_pb2.MarketEvent,
    DEPTH: market_pb2.MarketEvent,
    SIGNALS: signal_pb2.Signal,
    SHADOW_SIGNALS: signal_pb2.Signal,
    DECISIONS: risk_pb2.RiskDecision,
    REPORTS: execution_pb2.ExecutionReport,
    EXEC_STATE: execution_pb2.ExecutionReport,
    RISK_CHECKPOINT: risk_pb2.RiskCheckpoint,
    CONTROL: control_pb2.ControlEvent,
    DLQ: dlq_pb2.DeadLetter,
    AUDIT: control_pb2.ControlEvent,
}


SERVICES = ("ingest", "inference", "risk", "execution")
# Every Kafka identity of the system: the four services and the notifier (`quantumedge notify`), each its own
# principal with its own ACLs. The notifier only reads (and dead-letters what it cannot decode).
NOTIFY = "notify"
CLIENTS = (*SERVICES, NOTIFY)

# Who may write each topic: the ACLs (one Kafka principal per service) and the chart's KafkaUsers come from
# this map. Every service may dead-letter and audit; only risk may write decisions and control records.
WRITERS: dict[str, tuple[str, ...]] = {
    TRADES: ("ingest",),
    BOOK: ("ingest",),
    DEPTH: ("ingest",),
    SIGNALS: ("inference",),
    SHADOW_SIGNALS: ("inference",),
    DECISIONS: ("risk",),
    CONTROL: ("risk",),
    REPORTS: ("execution",),
    EXEC_STATE: ("execution",),
    RISK_CHECKPOINT: ("risk",),
    DLQ: CLIENTS,
    AUDIT: SERVICES,
}

# Who reads each topic (consumer loops and start-up rebuilds): the READ half of the ACLs. Nobody in the system
# reads dlq.v1 and audit.v1; operators do, with their own credentials.
READERS: dict[str, tuple[str, ...]] = {
    TRADES: ("inference", "execution"),
    BOOK: ("inference", "risk", "execution"),
    DEPTH: ("inference", "risk", "execution"),
    SIGNALS: ("risk",),
    SHADOW_SIGNALS: (),
    DECISIONS: ("execution",),
    CONTROL: ("risk", "execution", NOTIFY),
    REPORTS: ("risk", NOTIFY),
    EXEC_STATE: ("execution",),
    RISK_CHECKPOINT: ("risk",),
    DLQ: (),
    AUDIT: (),
}

AUDIT_RETENTION_MS = 30 * 24 * 3600 * 1000
CHECKPOINT_SEGMENT_MS = 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False
    writers: tuple[str, ...] = ()
    # None = the broker's default retention.
    retention_ms: int | None = None
    # None = the broker's default (7 days). Compaction never touches the active segment: a topic read whole at
    # start with large records (the risk checkpoint) rolls segments often, so old records go within the hour.
    segment_ms: int | None = None


ALL = tuple(
    TopicSpec(
        name,
        compacted=name in (CONTROL, EXEC_STATE, RISK_CHECKPOINT),
        writers=WRITERS[name],
        retention_ms=AUDIT_RETENTION_MS if name == AUDIT else None,
        segment_ms=CHECKPOINT_SEGMENT_MS if name == RISK_CHECKPOINT else None,
    )
    for name in MESSAGE_TYPES
)


def writers_of(topic: str) -> tuple[str, ...]:
    """The services allowed to write `topic` (a logical name, without any prefix)."""
    return WRITERS[topic]


def topics_written_by(service: str) -> tuple[str, ...]:
    """The logical topics `service` may write, in MESSAGE_TYPES order."""
    return tuple(name for name in MESSAGE_TYPES if service in WRITERS[name])


def topics_read_by(service: str) -> tuple[str, ...]:
    """The logical topics `service` consumes, in MESSAGE_TYPES order."""
    return tuple(name for name in MESSAGE_TYPES if service in READERS[name])


def topics_used_by(service: str) -> tuple[str, ...]:
    """Every logical topic `service` reads or writes (what its principal must see)."""
    return tuple(name for name in MESSAGE_TYPES if service in READERS[name] or service in WRITERS[name])


def market_topic_for(kind: str) -> str:
    """The topic of a MarketEvent payload kind ('trade', 'top_of_book', 'depth')."""
    return {"trade": TRADES, "top_of_book": BOOK, "depth": DEPTH}[kind]


# Fields without which a decoded message is unusable (proto3 has no `required`).
REQUIRED: dict[str, tuple[str, ...]] = {
    "MarketEvent": ("symbol", "payload"),
    "Signal": ("signal_id", "symbol"),
    "RiskDecision": ("decision_id", "symbol"),
    "ExecutionReport": ("report_id",),
    "ControlEvent": ("event_id", "payload"),
    "DeadLetter": ("source_topic",),
}


def missing_fields(message: Message) -> list[str]:
    """Names of REQUIRED fields (or oneofs) that are empty in message."""
    out = []
    for name in REQUIRED.get(type(message).__name__, ()):
        if name == "payload":
            if message.WhichOneof("payload") is None:
                out.append(name)
        elif not getattr(message, name):
            out.append(name)
    return out
