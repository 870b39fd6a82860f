"""The ACL plan is least privilege, follows quantumedge.shared.topics, and topics.READERS/WRITERS match what
each service really does (the four services run on the in-process bus, each through its own recording view)."""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

import pytest

from quantumedge import services_registry
from quantumedge.runner import START_ORDER
from quantumedge.settings import Settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus, acls
from quantumedge.shared.bus.base import Bus, Consumer, Record
from quantumedge.v1 import execution_pb2

SERVICES = topics.SERVICES


def writers_in(plan: list[acls.AclEntry], topic: str) -> set[str]:
    return {e.principal for e in plan if e.resource_type == acls.TOPIC and e.name == topic and e.operation == "Write"}


def test_only_the_owner_writes_each_topic() -> None:
    plan = acls.plan()
    user = {s: acls.principal_of(s) for s in topics.CLIENTS}
    assert writers_in(plan, topics.DECISIONS) == {user["risk"]}
    assert writers_in(plan, topics.CONTROL) == {user["risk"]}
    assert writers_in(plan, topics.REPORTS) == {user["execution"]}
    assert writers_in(plan, topics.SIGNALS) == {user["inference"]}
    for market in topics.MARKET:
        assert writers_in(plan, market) == {user["ingest"]}
    assert writers_in(plan, topics.DLQ) == set(user.values())  # whoever consumes may dead-letter
    assert writers_in(plan, topics.AUDIT) == {user[s] for s in SERVICES}  # the notifier serves no RPC
    for name in topics.MESSAGE_TYPES:
        assert writers_in(plan, name) == {user[s] for s in topics.writers_of(name)}


def test_nothing_beyond_read_and_write_on_the_systems_own_resources() -> None:
    plan = acls.plan(prefix="t1-")
    assert {(e.resource_type, e.operation, e.pattern, e.host, e.permission) for e in plan} <= {
        (acls.TOPIC, "Write", "literal", "*", "Allow"),
        (acls.TOPIC, "Read", "literal", "*", "Allow"),
        (acls.GROUP, "Read", "literal", "*", "Allow"),
    }
    assert {e.name for e in plan if e.resource_type == acls.TOPIC} == {f"t1-{t}" for t in topics.MESSAGE_TYPES}
    assert len(plan) == len(set(plan))


def test_each_consumer_reads_only_its_own_group() -> None:
    plan = acls.plan(prefix="p.", template="{service}-prod")
    groups = {(e.principal, e.name) for e in plan if e.resource_type == acls.GROUP}
    assert groups == {(f"User:{s}-prod", f"p.{s}") for s in ("inference", "risk", "execution", "notify")}


def test_the_notifier_only_reads_control_and_reports() -> None:
    mine = {(e.resource_type, e.name, e.operation) for e in acls.service_plan(topics.NOTIFY)}
    reads = {(acls.TOPIC, topics.CONTROL, "Read"), (acls.TOPIC, topics.REPORTS, "Read")}
    assert mine == reads | {(acls.TOPIC, topics.DLQ, "Write"), (acls.GROUP, "notify", "Read")}


def test_diff_names_what_is_missing_and_what_is_extra() -> None:
    plan = acls.plan()
    forged = acls.AclEntry(acls.principal_of("inference"), acls.TOPIC, topics.DECISIONS, "Write")
    missing, extra = acls.diff(plan, [*plan[1:], forged])
    assert missing == [plan[0]] and extra == [forged]


def test_only_grants_reaching_this_prefix_are_this_releases_business() -> None:
    who = acls.principal_of("inference")

    def entry(name: str, pattern: str = "literal", kind: str = acls.TOPIC) -> acls.AclEntry:
        return acls.AclEntry(who, kind, name, "Write", pattern)

    assert acls.touches(entry("p1.risk.decisions.v1"), "p1.")
    assert not acls.touches(entry("p2.risk.decisions.v1"), "p1."), "another release's grant"
    assert acls.touches(entry("*"), "p1."), "a wildcard covers this release too"
    assert acls.touches(entry("p", "prefixed"), "p1.") and acls.touches(entry("p1.risk", "prefixed"), "p1.")
    assert not acls.touches(entry("p2.", "prefixed"), "p1.")
    assert acls.touches(entry("kafka-cluster", kind="cluster"), "p1."), "never in the plan, whatever the prefix"
    assert acls.touches(entry("anything"), "")


# ---- the map against the code ---------------------------------------------------------------------------------


class ServiceView(Bus):
    """One service's window on a shared in-process bus, recording what it reads and writes."""

    def __init__(self, shared: MemoryBus, log: dict[str, set[str]]) -> None:
        self.shared, self.log = shared, log

    def _send(self, topic: str, key: bytes | None, value: bytes, headers: dict[str, bytes]) -> None:
        self.log["write"].add(topic)
        self.shared._send(topic, key, value, headers)

    def flush(self, timeout_s: float = 10.0) -> None:
        self.shared.flush(timeout_s)

    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = False) -> Consumer:
        self.log["read"].update(topics)
        self.log["group"].add(group)
        return self.shared.consumer(group, topics, from_beginning)

    def read_from(self, topic: str, start: Mapping[int, int], timeout_s: float = 10.0) -> list[Record]:
        self.log["read"].add(topic)
        return self.shared.read_from(topic, start, timeout_s)

    def ensure_topics(self, names: Iterable[str] | None = None) -> None:
        pass

    # Lockstep (ingest/lockstep.py) asks the shared bus: the run's services share one market present.
    def wait_quiescent(self, timeout_s: float) -> bool:
        return self.shared.wait_quiescent(timeout_s)

    def undelivered(self) -> dict[str, int]:
        return self.shared.undelivered()

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def observed() -> dict[str, dict[str, set[str]]]:
    """Run the four services (synthetic market, paper venue, shipped models) until execution acted on an order."""
    settings = Settings(bus="memory", embedded=True)
    settings = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"source": "synthetic", "synthetic_steps": 3000, "lockstep": True}
            )
        }
    )
    shared = MemoryBus(partitions=settings.kafka.partitions)
    logs: dict[str, dict[str, set[str]]] = {name: defaultdict(set) for name in SERVICES}
    started = []
    try:
        for name in START_ORDER:
            service = services_registry.create(name, settings, ServiceView(shared, logs[name]))
            service.start()
            started.append(service)
        # A safety bound, not a speed claim: the first fill comes a few thousand market seconds in, which a
        # loaded 2-core machine can take minutes to replay.
        deadline = time.monotonic() + 300
        while not _filled(shared) and time.monotonic() < deadline:
            threading.Event().wait(0.2)
    finally:
        for service in reversed(started):
            service.stop()
    assert _filled(shared), "no approved decision reached execution"
    return logs


def _filled(bus: MemoryBus) -> bool:
    """Execution acted on an approved decision (filled it, or refused it with a report): every service's
    path, ticks to an order, has run."""
    return any(
        execution_pb2.ExecutionReport.FromString(r.value).order.client_order_id for r in bus.read_all(topics.REPORTS)
    )


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_reads_exactly_its_readers_entries(observed: dict, service: str) -> None:
    assert observed[service]["read"] == set(topics.topics_read_by(service))
    assert observed[service]["group"] <= {service}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_writes_only_what_writers_allow(observed: dict, service: str) -> None:
    assert observed[service]["write"] <= set(topics.topics_written_by(service))
    assert observed[service]["write"], f"{service} published nothing in the run"


def test_the_table_in_docs_security_is_the_plan() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "security.md").read_text()

    def names(cell: str) -> set[str]:
        found = set(re.findall(r"`([a-z0-9_.*]+)`", cell))
        return {t for t in topics.MESSAGE_TYPES if any(fnmatch.fnmatch(t, pattern) for pattern in found)}

    rows = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"\| `quantumedge-(\w+)` \| (.*) \| (.*) \| (.*) \|", line):
            service, writes, reads, group = match.groups()
            rows[service] = (names(writes), names(reads), group.strip("` "))
    assert set(rows) == set(topics.CLIENTS)
    for service, (writes, reads, group) in rows.items():
        assert writes == set(topics.topics_written_by(service)), service
        assert reads == set(topics.topics_read_by(service)), service
        assert group == (service if topics.topics_read_by(service) else "none"), service
