"""Kafka security as a real deployment has it, end to end.

A real broker takes clients only over SASL_SSL (SCRAM-SHA-512, a CA made for the test) and enforces ACLs. The
operator stores each service's Kafka credentials in a real OpenBao with `quantumedge secrets rotate`, then the
Kafka admin runs `quantumedge topics --acls`. The four services run as separate `quantumedge serve` processes;
each logs in to OpenBao with its own AppRole, reads its own Kafka credentials (its policy allows no other's),
and talks to the broker as its own principal. Synthetic ticks become paper fills. A producer holding another
service's credentials is refused by the broker on a topic that service may not write, so the forged record
never reaches the topic (and so never the venue). No Kafka password shows in any process's output.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from quantumedge.execution.domain import ids
from quantumedge.secrets import paths
from quantumedge.shared import topics
from quantumedge.shared.bus import BusError
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.bus.kafka_security import KafkaCredentials
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import risk_pb2
from tests.harness import VaultEndpoint
from tests.integration.secrets.seeding import SeededVault, seed_known_secrets
from tests.support.execution_builders import decision
from tests.support.procs import (
    QUANTUMEDGE,
    ROOT,
    fills,
    free_port,
    kafka_env,
    print_logs,
    spawn,
    stop,
    synthetic_env,
    wait_serving,
)
from tests.support.waiting import wait_for
from tools.harness.kafka_secure import ADMIN, SaslSslKafka

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICES = ("execution", "risk", "inference", "ingest")  # downstream first


def principal(service: str) -> str:
    return f"quantumedge-{service}"


def run_cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess:
    """`quantumedge ARGS` as the operator runs it: values on stdin, never in arguments."""
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("QE_")}, **env}
    done = subprocess.run(
        [*QUANTUMEDGE, *args], input=stdin, capture_output=True, text=True, env=full, cwd=ROOT, timeout=120, check=False
    )
    assert done.returncode == 0, f"quantumedge {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def admin_bus(broker: SaslSslKafka, prefix: str) -> KafkaBus:
    secret = {"username": ADMIN, "password": broker.password(ADMIN), "ca_pem": broker.ca_pem}
    settings = KafkaSettings(bootstrap=broker.bootstrap, security_protocol="SASL_SSL", topic_prefix=prefix)
    return KafkaBus(settings, KafkaCredentials("test:admin", secret))


@pytest.fixture(scope="module")
def secured(kafka_sasl: SaslSslKafka, vault: VaultEndpoint, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    seeded: SeededVault = seed_known_secrets(vault.addr, vault.token)
    prefix = f"e2e-sasl-{uuid.uuid4().hex[:8]}."
    logs = tmp_path_factory.mktemp("sasl-logs")
    vault_cli = {
        "QE_VAULT_ADDR": vault.addr,
        "QE_VAULT_TOKEN": vault.token,
        "QE_VAULT__KV_MOUNT": seeded.kv_mount,
        "QE_VAULT__APPROLE_MOUNT": seeded.approle_mount,
        "QE_VAULT__POLICY_PREFIX": seeded.policy_prefix,
    }
    # The operator stores each identity's credentials (the Kafka admin's too), piped in on stdin.
    for identity in (*SERVICES, "admin"):
        user = ADMIN if identity == "admin" else principal(identity)
        secret = {"username": user, "password": kafka_sasl.password(user), "ca_pem": kafka_sasl.ca_pem}
        run_cli(["secrets", "rotate", paths.kafka_path(identity), "--stdin-json"], vault_cli, json.dumps(secret))
    kafka = {**kafka_env(kafka_sasl.bootstrap, prefix, protocol="SASL_SSL"), "QE_KAFKA__PARTITIONS": "2"}
    applied = run_cli(["topics", "--acls"], {**vault_cli, **kafka})
    ports = {name: free_port() for name in SERVICES}
    common = {
        **kafka_env(kafka_sasl.bootstrap, prefix, ports, protocol="SASL_SSL"),
        **synthetic_env(20),
        "QE_DATA_DIR": str(logs / "var"),
        "QE_VAULT_TOKEN": "",
    }
    procs: dict[str, subprocess.Popen] = {}
    bus = admin_bus(kafka_sasl, prefix)
    try:
        for name in SERVICES:
            procs[name] = spawn(["serve", name], {**common, **seeded.service_env(name)}, logs / f"{name}.log")
            wait_serving(ports[name], timeout_s=120, proc=procs[name])
        yield {"broker": kafka_sasl, "prefix": prefix, "procs": procs, "logs": logs, "bus": bus, "acls": applied}
    finally:
        codes = {name: stop(p) for name, p in procs.items()}
        bus.close()
        seeded.cleanup()
        print_logs(logs, codes, SERVICES)


def test_four_principals_flow_ticks_to_fills_over_sasl_ssl_with_acls(secured: dict) -> None:
    bus: KafkaBus = secured["bus"]
    assert "ACLs planned" in secured["acls"].stdout
    wait_for(lambda: len(fills(bus)) > 0, 240, "a paper fill on execution.reports.v1")
    filled = fills(bus)  # before the decisions: each fill's decision is then already on the topic
    decisions = [risk_pb2.RiskDecision.FromString(r.value) for r in bus.read_all(topics.DECISIONS)]
    assert {f.order.intent_id for f in filled} <= {d.intent.intent_id for d in decisions if d.approved}
    assert bus.read_all(topics.SIGNALS), "inference published no signal"
    # Each process logged in to Vault as its own role to fetch its own Kafka identity.
    for name in SERVICES:
        lines = [json.loads(x) for x in (secured["logs"] / f"{name}.log").read_text().splitlines() if x.startswith("{")]
        assert any(x.get("msg") == "vault login" and x.get("role") == name for x in lines), name
        assert secured["procs"][name].poll() is None, f"{name} died"


@pytest.mark.parametrize(("forger", "topic"), [("inference", topics.DECISIONS), ("ingest", topics.CONTROL)])
def test_another_services_credentials_are_refused_by_the_broker(secured: dict, forger: str, topic: str) -> None:
    """A stolen inference (or ingest) credential cannot place a decision or touch the control topic."""
    broker: SaslSslKafka = secured["broker"]
    wait_for(lambda: len(fills(secured["bus"])) > 0, 240, "the pipeline running")
    intent_id = f"forged-{uuid.uuid4().hex[:8]}"
    secret = {"username": principal(forger), "password": broker.password(principal(forger)), "ca_pem": broker.ca_pem}
    settings = KafkaSettings(bootstrap=broker.bootstrap, security_protocol="SASL_SSL", topic_prefix=secured["prefix"])
    forger_bus = KafkaBus(settings, KafkaCredentials(f"stolen:{forger}", secret))
    try:
        forger_bus.publish(topic, "BTCUSDT", decision(intent_id, qty=1.0, reference=60_000.0))
        with pytest.raises(BusError, match="TopicAuthorizationFailed"):
            forger_bus.flush(timeout_s=30)
    finally:
        forger_bus.close()
    # Not on the topic (the broker never took it), so execution never saw it and no order carries its id.
    bus: KafkaBus = secured["bus"]
    assert not [r for r in bus.read_all(topic) if intent_id.encode() in r.value]
    order_id = ids.order_id(ids.ENTRY, intent_id).encode()
    assert not [r for r in bus.read_all(topics.REPORTS) if order_id in r.value or intent_id.encode() in r.value]


def test_no_kafka_password_in_any_output(secured: dict) -> None:
    broker: SaslSslKafka = secured["broker"]
    wait_for(lambda: len(fills(secured["bus"])) > 0, 240, "the pipeline running")
    outputs = {name: (secured["logs"] / f"{name}.log").read_bytes() for name in SERVICES}
    passwords = {user: broker.password(user).encode() for user in (ADMIN, *map(principal, SERVICES))}
    leaks = [(name, user) for name, out in outputs.items() for user, pw in passwords.items() if pw in out]
    assert not leaks
    assert all(b'"level": "info"' in out for out in outputs.values())
    assert not any(Path(secured["logs"], "var").rglob("*.pem")), "a key or certificate was written to disk"


def test_serve_refuses_a_plaintext_broker_in_one_line_unless_allowed(kafka_bootstrap: str) -> None:
    env = {**kafka_env(kafka_bootstrap, f"e2e-plain-{uuid.uuid4().hex[:8]}.", {"risk": free_port()})}
    env["QE_KAFKA__ALLOW_PLAINTEXT"] = "false"
    full = {**{k: v for k, v in os.environ.items() if not k.startswith("QE_")}, **env}
    done = subprocess.run(
        [*QUANTUMEDGE, "serve", "risk"], capture_output=True, text=True, env=full, cwd=ROOT, timeout=120, check=False
    )
    line = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 2
    assert line.startswith("quantumedge serve: plaintext_refused:") and "QE_KAFKA__ALLOW_PLAINTEXT" in line, line
    assert "Traceback" not in done.stderr
