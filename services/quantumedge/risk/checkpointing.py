"""Risk's checkpoint on the bus: the signed RiskCheckpoint on risk.checkpoint.v1, and the start-up read of the
reports after it (issue 15, bounded restarts).

Written by the consumer thread (lock held) every `checkpoint_every_reports` reports or `checkpoint_every_s`
seconds, and on a graceful stop; signed with risk's key as control records are, so a forged or corrupt one is
refused at start and the full rebuild from execution.reports.v1 runs instead (logged once, with the reason).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from quantumedge.risk import checkpoint
from quantumedge.risk.domain.state import RiskLedger
from quantumedge.risk.settings import RiskSettings
from quantumedge.shared import bounds, signing, topics
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.logs import get_logger
from quantumedge.shared.signing import Keyring
from quantumedge.v1 import execution_pb2, risk_pb2

log = get_logger(__name__)
# Kafka's default record limit is 1 MB (producer max.request.size, broker message.max.bytes): stay below it.
MAX_BYTES = 900_000
# The order-rate window is at most this long for the checkpoint's purpose (an operator may widen the limit's).
ORDER_HORIZON_NS = 3_600_000_000_000
KEY = "ledger"  # the one key of the compacted topic: compaction keeps the newest checkpoint only
INVALID = "invalid_checkpoint"


@dataclass
class StoredReports:
    """The reports read at start, with what the bounds check refused (skipped, not applied)."""

    reports: list[execution_pb2.ExecutionReport] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    read: int = 0


class Checkpointer:
    def __init__(self, bus: Bus, keyring: Keyring, settings: RiskSettings, clock: Callable[[], int]) -> None:
        self.bus, self.keyring, self.settings, self.clock = bus, keyring, settings, clock
        # reports partition -> the next offset the ledger has not folded in (or skipped) yet
        self.covered: dict[int, int] = {}
        self._since = 0
        self._last_ns = clock()
        self.written = 0

    @property
    def enabled(self) -> bool:
        return self.settings.checkpoint_every_reports > 0

    def seen(self, record: Record) -> bool:
        """Whether the start-up read (or an earlier poll) already covered this record of the reports topic."""
        return record.offset < self.covered.get(record.partition, 0)

    def note(self, record: Record) -> None:
        self.covered[record.partition] = max(self.covered.get(record.partition, 0), record.offset + 1)
        self._since += 1

    def due(self, now_ns: int) -> bool:
        if not self.enabled or self._since == 0:
            return False
        every_ns = self.settings.checkpoint_every_s * 1e9
        return self._since >= self.settings.checkpoint_every_reports or now_ns - self._last_ns >= every_ns

    def write(
        self, ledger: RiskLedger, acknowledged_ns: int, order_window_ns: int = 0
    ) -> risk_pb2.RiskCheckpoint | None:
        """Publish the ledger as it stands (lock held; the caller's flush makes it durable). Dedup windows are cut
        until the record fits; one that never fits is not written (the next start replays more, loses nothing)."""
        if not self.enabled:
            return None
        now = self.clock()
        horizon = max(order_window_ns, ORDER_HORIZON_NS)
        for ids in (checkpoint.WINDOW_IDS, checkpoint.WINDOW_IDS // 5, 0):
            cp = checkpoint.capture(
                ledger,
                self.covered,
                time_ns=now,
                acknowledged_ns=acknowledged_ns,
                window_ids=ids,
                order_horizon_ns=horizon,
            )
            if cp.ByteSize() <= MAX_BYTES:
                break
        else:
            log.error("risk checkpoint too large: not written", extra={"bytes": cp.ByteSize(), "limit": MAX_BYTES})
            return None
        cp.checkpoint_id = str(uuid.uuid4())
        self.keyring.sign(cp, topics.RISK_CHECKPOINT, KEY)
        self.bus.publish(topics.RISK_CHECKPOINT, KEY, cp)
        self._since, self._last_ns = 0, now
        self.written += 1
        return cp

    def load(self) -> risk_pb2.RiskCheckpoint | None:
        """The newest checkpoint that decodes, verifies and holds sane values; None (said once) when none does."""
        records = self.bus.read_all(topics.RISK_CHECKPOINT, timeout_s=self.settings.rebuild_timeout_s)
        refused: dict[str, int] = {}
        for rec in sorted(records, key=lambda r: (r.timestamp_ms, r.offset), reverse=True):
            cp, code = _verified(rec, self.keyring)
            if cp is not None:
                if refused:
                    log.warning("newer risk checkpoints refused; an older valid one restored", extra=_said(refused))
                return cp
            refused[code] = refused.get(code, 0) + 1
        if refused:
            log.warning(
                "risk checkpoint refused: rebuilding from the whole execution.reports.v1 topic", extra=_said(refused)
            )
        return None

    def read_reports(self, start: Mapping[int, int]) -> StoredReports:
        """The reports from `start` on (all of them when empty), without what the bounds check refuses (its dead
        letter went out when it was first consumed): skipped, and said once, with the count and the first reason."""
        out = StoredReports()
        first: tuple[int, int, str] | None = None
        self.covered = dict(start)
        for rec in self.bus.read_from(topics.REPORTS, start, timeout_s=self.settings.rebuild_timeout_s):
            out.read += 1
            self.covered[rec.partition] = max(self.covered.get(rec.partition, 0), rec.offset + 1)
            try:
                report = execution_pb2.ExecutionReport.FromString(rec.value)
            except Exception:
                out.skipped["undecodable"] = out.skipped.get("undecodable", 0) + 1
                first = first or (rec.partition, rec.offset, "undecodable")
                continue
            problem = bounds.check_report(report)
            if problem is not None:
                out.skipped[problem.code] = out.skipped.get(problem.code, 0) + 1
                first = first or (rec.partition, rec.offset, f"{problem.code}: {problem.detail}")
                continue
            out.reports.append(report)
        if first is not None:
            log.warning(
                "rebuild skipped invalid execution reports",
                extra={"skipped": out.skipped, "first_position": first[:2], "first_reason": first[2]},
            )
        return out


def _verified(rec: Record, keyring: Keyring) -> tuple[risk_pb2.RiskCheckpoint | None, str]:
    """(checkpoint, "") when it can be restored, else (None, the reason code)."""
    if rec.value is None:
        return None, signing.TOMBSTONE
    if (rec.key or b"") != KEY.encode():
        return None, signing.UNEXPECTED_RECORD
    try:
        cp = risk_pb2.RiskCheckpoint.FromString(rec.value)
    except Exception:
        return None, signing.UNDECODABLE
    verdict = keyring.verify(cp, topics.RISK_CHECKPOINT, KEY)
    if not verdict.ok:
        return None, verdict.code
    return (None, INVALID) if checkpoint.invalid(cp) else (cp, "")


def _said(refused: dict[str, int]) -> dict[str, object]:
    return {"refused": refused, "topic": topics.RISK_CHECKPOINT}
