"""Kafka topic names (`<producer>.<event>.v1`) and the protobuf type each one carries."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import Message

from quantumedge.v1 import control_pb2, dlq_pb2, execution_pb2, market_pb2, risk_pb2, signal_pb2

TRADES = "ingest.trades.v1"
BOOK = "ingest.book.v1"
DEPTH = "ingest.depth.v1"
SIGNALS = "inference.signals.v1"
DECISIONS = "risk.decisions.v1"
REPORTS = "execution.reports.v1"
EXEC_STATE = "execution.state.v1"
CONTROL = "control.v1"
DLQ = "dlq.v1"

MARKET = (TRADES, BOOK, DEPTH)

MESSAGE_TYPES: dict[str, type[Message]] = {
    TRADES: market_pb2.MarketEvent,
    BOOK: market_pb2.MarketEvent,
    DEPTH: market_pb2.MarketEvent,
    SIGNALS: signal_pb2.Signal,
    DECISIONS: risk_pb2.RiskDecision,
    REPORTS: execution_pb2.ExecutionReport,
    EXEC_STATE: execution_pb2.ExecutionReport,
    CONTROL: control_pb2.ControlEvent,
    DLQ: dlq_pb2.DeadLetter,
}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False


ALL = tuple(TopicSpec(name, compacted=name in (CONTROL, EXEC_STATE)) for name in MESSAGE_TYPES)


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
