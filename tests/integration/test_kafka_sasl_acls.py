"""On a real broker secured as in production (SASL_SSL with SCRAM-SHA-512, a self-made CA, ACLs enforced, no
access without an ACL), `quantumedge topics --acls` sets the plan up and the broker holds each principal to it:
a producer with another service's credentials is refused on a topic it may not write, a consumer on a group it
does not own is refused, and a wrong password or a plaintext client gets nothing.

The admin credential `quantumedge topics` uses comes from a real OpenBao (the `vault` fixture)."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import hvac
import pytest
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
)

from quantumedge.secrets import paths
from quantumedge.secrets.bootstrap import wait_kv2_ready
from quantumedge.shared import topics
from quantumedge.shared.bus import BusError, acls
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.bus.kafka_security import KafkaCredentials
from quantumedge.shared.config import KafkaSettings
from quantumedge.topics_cli import topics_main
from quantumedge.v1 import control_pb2
from tests.harness import VaultEndpoint
from tools.harness.kafka_secure import ADMIN, SaslSslKafka

pytestmark = pytest.mark.integration


def user(service: str) -> str:
    return f"quantumedge-{service}"


def credentials(broker: SaslSslKafka, name: str, password: str | None = None) -> KafkaCredentials:
    return KafkaCredentials(
        f"test:{name}",
        {
            "username": name,
            "password": broker.password(name) if password is None else password,
            "ca_pem": broker.ca_pem,
        },
    )


def bus_as(broker: SaslSslKafka, name: str, prefix: str, **kw: object) -> KafkaBus:
    settings = KafkaSettings(
        bootstrap=broker.bootstrap, security_protocol="SASL_SSL", topic_prefix=prefix, request_timeout_ms=10_000
    )
    return KafkaBus(settings, credentials(broker, name, **kw))  # type: ignore[arg-type]


@pytest.fixture
def cluster(kafka_sasl: SaslSslKafka, vault: VaultEndpoint, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A fresh prefix on the secured broker, and the admin credential in a fresh KV mount of the real Vault;
    the environment `quantumedge topics` reads (admin Vault token, Kafka over SASL_SSL)."""
    prefix = f"acl-{uuid.uuid4().hex[:8]}."
    mount = f"qe-kv-{uuid.uuid4().hex[:8]}"
    root = hvac.Client(url=vault.addr, token=vault.token, timeout=10)
    root.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    wait_kv2_ready(root, mount)  # a fresh kv-v2 mount refuses writes for a moment
    admin_secret = {"username": ADMIN, "password": kafka_sasl.password(ADMIN), "ca_pem": kafka_sasl.ca_pem}
    root.secrets.kv.v2.create_or_update_secret(paths.kafka_path("admin"), admin_secret, mount_point=mount)
    for name in [n for n in list(os.environ) if n.startswith("QE_")]:
        monkeypatch.delenv(name)
    env = {
        "QE_KAFKA__BOOTSTRAP": kafka_sasl.bootstrap,
        "QE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "QE_KAFKA__TOPIC_PREFIX": prefix,
        "QE_KAFKA__PARTITIONS": "1",
        "QE_VAULT_ADDR": vault.addr,
        "QE_VAULT_TOKEN": vault.token,
        "QE_VAULT__KV_MOUNT": mount,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    admin = KafkaAdminClient(**kafka_sasl.client_config(ADMIN))
    try:
        yield {"prefix": prefix, "broker": kafka_sasl, "admin": admin}
    finally:
        with contextlib.suppress(Exception):
            _delete_acls_under(admin, prefix)
        with contextlib.suppress(Exception):
            admin.delete_topics([prefix + t for t in topics.MESSAGE_TYPES])
        admin.close()
        root.sys.disable_secrets_engine(mount)


def _delete_acls_under(admin: KafkaAdminClient, prefix: str) -> None:
    held = acls.describe(admin, {e.principal for e in acls.plan()} | {"User:quantumedge-outsider"}, prefix)
    mine = [acl for entry, acl in held.items() if entry.name.startswith(prefix)]
    if mine:
        admin.delete_acls([_filter(acl) for acl in mine])


def _filter(acl: Any) -> Any:
    from kafka.admin import ACLFilter

    return ACLFilter(acl.principal, acl.host, acl.operation, acl.permission_type, acl.resource_pattern)


@pytest.fixture
def applied(cluster: dict, capsys: pytest.CaptureFixture[str]) -> dict:
    assert topics_main(["--acls"]) == 0, capsys.readouterr().err
    return cluster


def record() -> bytes:
    return control_pb2.ControlEvent(event_id=uuid.uuid4().hex).SerializeToString()


def test_topics_command_creates_topics_and_exactly_the_planned_acls(
    cluster: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix, admin = cluster["prefix"], cluster["admin"]
    assert topics_main(["--check"]) == 1
    assert "MISSING" in capsys.readouterr().out
    assert topics_main(["--acls"]) == 0
    created = capsys.readouterr().out
    plan = acls.plan(prefix=prefix)
    assert created.count("created ") == len(plan)
    assert {prefix + t for t in topics.MESSAGE_TYPES} <= set(admin.list_topics())
    # What the broker holds for the four principals on this prefix is the plan, nothing more.
    assert set(acls.describe(admin, {e.principal for e in plan}, prefix)) == set(plan)
    assert topics_main(["--check"]) == 0
    assert topics_main(["--acls"]) == 0  # idempotent
    assert f"{len(plan)} ACLs planned: 0 created" in capsys.readouterr().out


def test_each_principal_writes_exactly_the_topics_the_plan_gives_it(applied: dict) -> None:
    broker, prefix = applied["broker"], applied["prefix"]
    outcome: dict[tuple[str, str], bool] = {}
    for service in topics.CLIENTS:
        for topic in topics.MESSAGE_TYPES:
            # A fresh producer each time: an authorization failure is fatal to an idempotent producer.
            bus = bus_as(broker, user(service), prefix)
            try:
                bus.publish(topic, "k", record())
                bus.flush(timeout_s=30)
                outcome[(service, topic)] = True
            except (BusError, KafkaError):
                outcome[(service, topic)] = False
            finally:
                bus.close()
    expected = {(s, t): s in topics.writers_of(t) for s in topics.CLIENTS for t in topics.MESSAGE_TYPES}
    assert outcome == expected
    # What was refused never reached the log: each topic holds one record per allowed writer.
    reader = bus_as(broker, ADMIN, prefix)
    try:
        for topic in topics.MESSAGE_TYPES:
            assert len(reader.read_all(topic, timeout_s=30)) == len(topics.writers_of(topic)), topic
    finally:
        reader.close()


@pytest.mark.parametrize(
    ("forger", "topic"),
    [("inference", topics.DECISIONS), ("execution", topics.CONTROL), ("ingest", topics.REPORTS)],
)
def test_another_services_credentials_cannot_forge_its_records(applied: dict, forger: str, topic: str) -> None:
    assert_refused(applied, forger, topic)


def assert_refused(cluster: dict, forger: str, topic: str) -> None:
    bus = bus_as(cluster["broker"], user(forger), cluster["prefix"])
    try:
        bus.publish(topic, "BTCUSDT", record())
        with pytest.raises(BusError, match="TopicAuthorizationFailed"):
            bus.flush(timeout_s=30)
    finally:
        bus.close()


def _consume(broker: SaslSslKafka, name: str, topic: str, group: str) -> None:
    consumer = KafkaConsumer(
        topic, group_id=group, enable_auto_commit=False, consumer_timeout_ms=5000, **broker.client_config(name)
    )
    try:
        consumer.poll(timeout_ms=10_000)
        consumer.commit()
    finally:
        consumer.close()


def test_a_consumer_may_join_only_its_own_group_on_its_own_topics(applied: dict) -> None:
    broker, prefix = applied["broker"], applied["prefix"]
    risk = bus_as(broker, user("risk"), prefix)
    inference = bus_as(broker, user("inference"), prefix)
    execution = bus_as(broker, user("execution"), prefix)
    try:
        risk.publish(topics.DECISIONS, "BTCUSDT", record())
        risk.flush(timeout_s=30)
        _consume(broker, user("risk"), prefix + topics.SIGNALS, prefix + "risk")  # its own group and topic
        with pytest.raises(GroupAuthorizationFailedError):
            _consume(broker, user("inference"), prefix + topics.BOOK, prefix + "risk")  # risk's group
        # A topic it may not read is invisible: no records, and the bus's consumer gets no partitions.
        assert inference.read_all(topics.DECISIONS, timeout_s=10) == []
        assert len(execution.read_all(topics.DECISIONS, timeout_s=30)) == 1  # who may read it sees it
        consumer = inference.consumer("inference", [topics.DECISIONS], from_beginning=True)
        try:
            with pytest.raises(BusError, match="no partition assignment"):
                consumer.wait_assigned(timeout_s=8, resubscribe_after_s=4)  # type: ignore[attr-defined]
        finally:
            consumer.close()
    finally:
        for bus in (risk, inference, execution):
            bus.close()


def test_a_principal_no_acl_names_gets_nothing(applied: dict) -> None:
    bus = bus_as(applied["broker"], "quantumedge-outsider", applied["prefix"])
    try:
        bus.publish(topics.DLQ, "k", record())
        with pytest.raises(BusError, match="TopicAuthorizationFailed"):
            bus.flush(timeout_s=30)
        assert bus.read_all(topics.CONTROL, timeout_s=10) == []  # not even visible
    finally:
        bus.close()


def _broker_says(broker: SaslSslKafka, reason: str) -> int:
    """How many refused connections the broker's own log gives `reason` for."""
    assert broker.log_path is not None
    lines = broker.log_path.read_text(errors="replace").splitlines()
    return sum("Failed authentication with /127.0.0.1" in line and reason in line for line in lines)


def test_wrong_password_and_plaintext_clients_are_refused(applied: dict) -> None:
    broker = applied["broker"]
    bad_password, no_tls = "invalid credentials with SASL mechanism SCRAM-SHA-512", "(SSL handshake failed)"
    before = _broker_says(broker, bad_password), _broker_says(broker, no_tls)
    wrong = broker.client_config(user("risk"), password="not-" + broker.password(user("risk")))
    with pytest.raises(KafkaError):
        KafkaAdminClient(**wrong, bootstrap_timeout_ms=5000, request_timeout_ms=5000)
    with pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=broker.bootstrap, bootstrap_timeout_ms=5000, request_timeout_ms=5000)

    # The broker logs each refusal with its reason (kafka-python only sees that it cannot bootstrap).
    def logged() -> bool:
        return _broker_says(broker, bad_password) > before[0] and _broker_says(broker, no_tls) > before[1]

    deadline = time.monotonic() + 10
    while not logged() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert logged(), "the broker did not log refusing the wrong password and the plaintext client"


def test_prune_removes_a_grant_added_by_hand(applied: dict, capsys: pytest.CaptureFixture[str]) -> None:
    prefix, admin = applied["prefix"], applied["admin"]
    inference = acls.principal_of("inference")
    forged = acls.AclEntry(inference, acls.TOPIC, prefix + topics.DECISIONS, "Write")
    wildcard = acls.AclEntry(inference, acls.TOPIC, prefix[:4], "Write", "prefixed")  # covers every topic here
    elsewhere = acls.AclEntry(inference, acls.TOPIC, "other-release." + topics.DECISIONS, "Write")
    admin.create_acls([acls.to_kafka(e) for e in (forged, wildcard, elsewhere)])
    capsys.readouterr()
    assert topics_main(["--check"]) == 1
    report = capsys.readouterr().out
    assert f"EXTRA   {forged.line()}" in report and f"EXTRA   {wildcard.line()}" in report
    assert elsewhere.name not in report, "another release's grant is not this release's business"
    assert topics_main(["--acls", "--prune"]) == 0
    deleted = capsys.readouterr().out
    assert f"deleted {forged.line()}" in deleted and f"deleted {wildcard.line()}" in deleted
    assert topics_main(["--check"]) == 0
    assert_refused(applied, "inference", topics.DECISIONS)
    held = acls.describe(admin, {inference})
    assert elsewhere in held, "prune left the other release's grant alone"
    admin.delete_acls([_filter(held[elsewhere])])
