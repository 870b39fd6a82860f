"""Audit records: every allowed and refused changing call, every refused record, every automatic halt.

They go to audit.v1 (not compacted, kept by retention), never to the compacted control.v1 that risk and
execution read whole at start: unique audit keys there let a flood of refusals grow what a restart must read.
Each names its caller: the operator's subject, the certificate subject, or the bus position of a record.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message

from quantumedge.shared import topics
from quantumedge.shared.bus.base import Record
from quantumedge.v1 import common_pb2, control_pb2


class AuditFn(Protocol):
    """(method, allowed, subject, detail, code="", source="") -> None"""

    def __call__(
        self, method: str, allowed: bool, subject: str, detail: str, code: str = "", source: str = ""
    ) -> None: ...


def audit_event(
    service: str,
    method: str,
    allowed: bool,
    actor: common_pb2.Actor,
    outcome: str,
    *,
    reason: str = "",
    code: str = "",
    request: Message | None = None,
    time_ns: int = 0,
) -> control_pb2.ControlEvent:
    return control_pb2.ControlEvent(
        event_id=uuid.uuid4().hex,
        time_ns=time_ns or time.time_ns(),
        actor=actor,
        reason=reason,
        audit=control_pb2.AuditRecord(
            service=service,
            method=method,
            request_json=MessageToJson(request, indent=None) if request is not None else "",
            allowed=allowed,
            outcome=outcome,
            reason_code=code,
        ),
    )


def publish_audit(bus: Any, event: control_pb2.ControlEvent) -> None:
    """On audit.v1, keyed by the service that wrote it (partitioning only: the topic is not compacted)."""
    bus.publish(topics.AUDIT, event.audit.service or None, event)


def bus_audit(bus: Any, service: str) -> AuditFn:
    """The operator-auth interceptor's audit callback: one audit.v1 record per call it audits."""

    def audit(method: str, allowed: bool, subject: str, detail: str, code: str = "", source: str = "") -> None:
        actor = common_pb2.Actor(subject=subject or "anonymous", source=source or detail.rpartition("peer=")[2])
        outcome = "allowed" if allowed else f"refused: {detail}"
        publish_audit(bus, audit_event(service, method, allowed, actor, outcome, reason=detail, code=code))

    return audit


def refusal_audit(bus: Any, service: str) -> Callable[[Record, str, str], None]:
    """A consumer loop's refusal hook: an audit record naming the refused record's topic, position and key id."""

    def audit(record: Record, code: str, detail: str) -> None:
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        actor = common_pb2.Actor(subject=f"bus:{record.topic}", source=where)
        event = audit_event(
            service, f"consume {record.topic}", False, actor, f"refused: {code}: {detail}", reason=detail, code=code
        )
        publish_audit(bus, event)

    return audit
