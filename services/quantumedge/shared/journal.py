"""The journal of a run: every signal, decision and execution report, as JSON lines, one file per topic.

`quantumedge up --journal DIR` writes it when the run ends (the in-process bus keeps everything until then):
signals.jsonl, decisions.jsonl and reports.jsonl, each record in its topic's order per partition, as the
protobuf's canonical JSON (field names as in the .proto). Nothing in these topics is secret.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import json_format

from quantumedge.shared import topics
from quantumedge.shared.bus import Bus

JOURNAL_FILES = {topics.SIGNALS: "signals.jsonl", topics.DECISIONS: "decisions.jsonl", topics.REPORTS: "reports.jsonl"}


def write_journal(bus: Bus, folder: Path) -> dict[str, int]:
    """Write the journal into `folder` (created when missing); returns the records written per file."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for topic, name in JOURNAL_FILES.items():
        message_type = topics.MESSAGE_TYPES[topic]
        lines = []
        for rec in bus.read_all(topic):
            message = message_type.FromString(rec.value)
            lines.append(json_format.MessageToJson(message, preserving_proto_field_name=True, indent=None))
        (folder / name).write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        written[name] = len(lines)
    return written
