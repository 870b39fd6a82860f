"""The Kafka ACLs of the system, derived from quantumedge.shared.topics (WRITERS, READERS), and their upkeep.

One principal per service (User:<kafka.principal_template>, default quantumedge-<service>; the notifier is one
more, quantumedge-notify, which only reads control.v1 and execution.reports.v1), allowed exactly:
- WRITE on the topics it publishes (topics.WRITERS): only risk writes risk.decisions.v1 and control.v1, only
  execution execution.reports.v1 (and its state topic), only ingest ingest.*.v1, only inference
  inference.signals.v1 and inference.shadow_signals.v1; every service dlq.v1 and audit.v1;
- READ on the topics it consumes (topics.READERS) - READ and WRITE imply DESCRIBE, nothing else is needed;
- READ on its own consumer group (the service's name, with the topic prefix) and on no other; ingest, which
  consumes nothing, on none.
No service may create, delete or alter topics, or touch the cluster: topics come from `quantumedge topics` run
with admin credentials, or from the chart's Strimzi KafkaTopic/KafkaUser resources (same plan).

`plan()` is pure; `describe`/`apply`/`prune` talk to the cluster through kafka-python's admin client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from quantumedge.shared import topics

TOPIC, GROUP = "topic", "group"


@dataclass(frozen=True, order=True)
class AclEntry:
    """One ALLOW rule, in the words of kafka-acls and Strimzi: principal, resource, operation."""

    principal: str  # User:quantumedge-risk
    resource_type: str  # topic | group
    name: str  # physical name (with the topic prefix)
    operation: str  # Read | Write
    pattern: str = "literal"
    host: str = "*"
    permission: str = "Allow"

    def line(self) -> str:
        where = self.name if self.pattern == "literal" else f"{self.name}* ({self.pattern})"
        return f"{self.permission.upper():<5} {self.principal:<28} {self.operation:<5} {self.resource_type:<5} {where}"


def principal_of(service: str, template: str = "quantumedge-{service}") -> str:
    return f"User:{template.format(service=service)}"


def service_plan(service: str, *, prefix: str = "", template: str = "quantumedge-{service}") -> list[AclEntry]:
    """Every ACL `service`'s principal gets, and nothing else."""
    who = principal_of(service, template)
    out = [AclEntry(who, TOPIC, prefix + name, "Write") for name in topics.topics_written_by(service)]
    reads = topics.topics_read_by(service)
    out += [AclEntry(who, TOPIC, prefix + name, "Read") for name in reads]
    if reads:  # a consumer: its own group, named after it (ingest consumes nothing)
        out.append(AclEntry(who, GROUP, prefix + service, "Read"))
    return out


def plan(*, prefix: str = "", template: str = "quantumedge-{service}") -> list[AclEntry]:
    """The ACLs of every Kafka identity of the system (the four services and the notifier), sorted."""
    return sorted(
        entry for client in topics.CLIENTS for entry in service_plan(client, prefix=prefix, template=template)
    )


def diff(wanted: Iterable[AclEntry], present: Iterable[AclEntry]) -> tuple[list[AclEntry], list[AclEntry]]:
    """(missing from the cluster, present but not wanted) - both sorted."""
    wanted_set, present_set = set(wanted), set(present)
    return sorted(wanted_set - present_set), sorted(present_set - wanted_set)


# ---- the cluster side (kafka-python admin) -----------------------------------------------------------------


def to_kafka(entry: AclEntry) -> Any:
    """The concrete kafka-python ACL of a planned entry."""
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    pattern = ResourcePattern(
        ResourceType[entry.resource_type.upper()], entry.name, ACLResourcePatternType[entry.pattern.upper()]
    )
    return ACL(
        entry.principal,
        entry.host,
        ACLOperation[entry.operation.upper()],
        ACLPermissionType[entry.permission.upper()],
        pattern,
    )


def from_kafka(acl: Any) -> AclEntry:
    """An ACL read back from the cluster, in the plan's words (IDEMPOTENT_WRITE -> IdempotentWrite)."""
    rp = acl.resource_pattern
    return AclEntry(
        principal=acl.principal,
        resource_type=rp.resource_type.name.lower(),
        name=rp.resource_name,
        operation=acl.operation.name.title().replace("_", ""),
        pattern=rp.pattern_type.name.lower(),
        host=acl.host,
        permission=acl.permission_type.name.title(),
    )


def touches(entry: AclEntry, prefix: str) -> bool:
    """Whether an ACL reaches this release's resources (its topic prefix): any grant on them, a wildcard or a
    prefixed pattern covering them, or anything beyond topics and groups (never in the plan). Grants the same
    principals hold for another prefix belong to that release and are neither reported nor pruned here."""
    if not prefix or entry.resource_type not in (TOPIC, GROUP):
        return True
    if entry.pattern == "prefixed":
        return entry.name.startswith(prefix) or prefix.startswith(entry.name)
    return entry.name == "*" or entry.name.startswith(prefix)


def describe(admin: Any, principals: Iterable[str], prefix: str = "") -> dict[AclEntry, Any]:
    """Every ACL the cluster holds for these principals that touches `prefix`'s resources: entry -> the
    cluster's ACL."""
    from kafka.admin import (
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        ResourcePatternFilter,
        ResourceType,
    )

    out: dict[AclEntry, Any] = {}
    everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    for principal in sorted(set(principals)):
        acls, _ = admin.describe_acls(ACLFilter(principal, None, ACLOperation.ANY, ACLPermissionType.ANY, everything))
        for acl in acls:
            entry = from_kafka(acl)
            if touches(entry, prefix):
                out[entry] = acl
    return out


def apply(admin: Any, wanted: list[AclEntry], prefix: str = "", *, timeout_s: float = 30.0) -> list[AclEntry]:
    """Create the wanted ACLs the cluster lacks and wait until the cluster lists them; returns what was created.
    Raises when Kafka refuses one."""
    missing, _ = diff(wanted, describe(admin, {e.principal for e in wanted}, prefix))
    if missing:
        result = admin.create_acls([to_kafka(e) for e in missing])
        if result["failed"]:
            raise RuntimeError(f"kafka refused to create {len(result['failed'])} ACLs: {result['failed'][:3]}")
        _settle(admin, wanted, prefix, lambda still_missing, _extra: not still_missing, timeout_s)
    return missing


def _settle(
    admin: Any, wanted: list[AclEntry], prefix: str, done: Callable[[list, list], bool], timeout_s: float
) -> None:
    """ACL changes reach the brokers' authorizers through the metadata log a moment later: wait for them, so a
    `--check` (or a client) right after sees what was applied."""
    deadline = time.monotonic() + timeout_s
    while not done(*diff(wanted, describe(admin, {e.principal for e in wanted}, prefix))):
        if time.monotonic() > deadline:
            raise RuntimeError(f"kafka did not list the changed ACLs within {timeout_s:.0f} s")
        time.sleep(0.2)


def prune(admin: Any, wanted: list[AclEntry], prefix: str = "", *, timeout_s: float = 30.0) -> list[AclEntry]:
    """Delete every ACL of the plan's principals that the plan does not hold (a grant someone added by hand,
    or one a changed plan dropped); returns what was deleted."""
    from kafka.admin import ACLFilter

    present = describe(admin, {e.principal for e in wanted}, prefix)
    _, extra = diff(wanted, present)
    if not extra:
        return []
    filters = []
    for entry in extra:
        acl = present[entry]
        filters.append(ACLFilter(acl.principal, acl.host, acl.operation, acl.permission_type, acl.resource_pattern))
    admin.delete_acls(filters)
    gone = set(extra)
    _settle(admin, wanted, prefix, lambda _missing, still_extra: not gone & set(still_extra), timeout_s)
    return extra
