"""Each service's Prometheus endpoint, scraped during a run of four `quantumedge serve` processes (and the
notifier) on a real Kafka broker; and the chart's Grafana dashboards query only what they export."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import common_pb2, execution_pb2, execution_pb2_grpc, risk_pb2, risk_pb2_grpc
from tests.peers.notify_peers import WebhookPeer
from tests.support.procs import ROOT, free_port, kafka_env, spawn, stop, wait_serving

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ("execution", "risk", "inference", "ingest")
DASHBOARDS = sorted((ROOT / "charts/quantumedge/dashboards").glob("*.json"))

# The families, by the service that exports them.
FAMILIES = {
    "ingest": ["qe_ingest_events"],
    "inference": ["qe_inference_signals", "qe_inference_prediction_drift", "qe_bus_consumer_lag"],
    "risk": [
        "qe_risk_decisions",
        "qe_risk_tick_to_decision_milliseconds",
        "qe_risk_equity_quote",
        "qe_risk_pnl_today_quote",
        "qe_risk_drawdown",
        "qe_risk_limit_headroom",
        "qe_risk_trading_state",
        "qe_bus_consumer_lag",
        "qe_bus_dead_letters",
    ],
    "execution": [
        "qe_execution_rejects",
        "qe_execution_orders_sent",
        "qe_execution_fills",
        "qe_execution_decision_to_ack_milliseconds",
        "qe_execution_venue_weight_used",
        "qe_bus_consumer_lag",
    ],
}
# Families whose value is honestly zero in this run: an empty lag, no drawdown at the start, an ACTIVE
# state, and the paper venue's request weight (it makes no venue requests).
MAY_BE_ZERO = {"qe_bus_consumer_lag", "qe_risk_drawdown", "qe_risk_trading_state", "qe_execution_venue_weight_used"}


def scrape(port: int) -> dict[str, list]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def answers(port: int) -> bool:
    try:
        scrape(port)
    except OSError:
        return False
    return True


def value(samples: list) -> float:
    """A family's size: the sum of counters' and histograms' counts, else the largest |gauge|."""
    counts = [s.value for s in samples if s.name.endswith(("_total", "_count"))]
    if counts:
        return sum(counts)
    return max((abs(s.value) for s in samples), default=0.0)


def complete(scrapes: dict[str, dict[str, list]]) -> bool:
    return all(
        name in scrapes[service] and (name in MAY_BE_ZERO or value(scrapes[service][name]) > 0)
        for service, names in FAMILIES.items()
        for name in names
    )


@pytest.fixture(scope="module")
def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("metrics")
    prefix = f"e2e-metrics-{uuid.uuid4().hex[:8]}."
    token = secrets.token_hex(24)
    ports = {n: free_port() for n in SERVICES}
    metrics = {n: free_port() for n in (*SERVICES, "notify")}
    webhook = WebhookPeer().start()
    common = {
        **kafka_env(kafka_bootstrap, prefix, ports),
        **{f"QE_PORTS__{n.upper()}_METRICS": str(p) for n, p in metrics.items()},
        "QE_DATA_DIR": str(tmp / "var"),
        "QE_INGEST__SOURCE": "synthetic",
        "QE_INGEST__SYNTHETIC_STEPS": "0",
        "QE_INGEST__SYNTHETIC_SPEED": "5",
        "QE_VAULT__OPERATOR_TOKEN_SHA256": hashlib.sha256(token.encode()).hexdigest(),
        "QE_EXECUTION__RISK_ADDRESS": f"127.0.0.1:{ports['risk']}",
        # No cooldowns, so the manual order below is reviewed on its limits alone.
        "QE_RISK__LIMITS__COOLDOWN_AFTER_LOSS_NS": "0",
        "QE_RISK__LIMITS__COOLDOWN_AFTER_EXIT_NS": "0",
        "QE_NOTIFY__WEBHOOK_URLS": json.dumps([webhook.url]),
        # Fills would spend the rate limit's burst before the halt: this run is about the halt.
        "QE_NOTIFY__EVENTS__FILL": "false",
    }
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    procs = {}
    try:
        for name in SERVICES:
            procs[name] = spawn(["serve", name], common, tmp / f"{name}.log")
            wait_serving(ports[name], timeout_s=90, proc=procs[name])
        procs["notify"] = spawn(["notify"], common, tmp / "notify.log")
        deadline = time.monotonic() + 120
        while not answers(metrics["notify"]):  # it listens once it has joined its consumer group
            assert time.monotonic() < deadline and procs["notify"].poll() is None, f"notify never ready ({tmp})"
            time.sleep(0.5)
        # A record nobody can decode: risk dead-letters it.
        bus.publish(topics.SIGNALS, "BTCUSDT", b"\xff\x00 not a signal")
        bus.flush()
        deadline = time.monotonic() + 300
        while value(scrape(metrics["execution"]).get("qe_execution_fills", [])) == 0:
            assert time.monotonic() < deadline, f"no fill in time (see {tmp})"
            for name, proc in procs.items():
                assert proc.poll() is None, f"{name} exited (see {tmp / f'{name}.log'})"
            time.sleep(1)
        with grpc.insecure_channel(f"127.0.0.1:{ports['risk']}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            good = (("authorization", f"Bearer {token}"),)
            risk.Halt(risk_pb2.HaltRequest(reason="metrics test"), metadata=good, timeout=10)
            risk.Resume(risk_pb2.ResumeRequest(reason="metrics test"), metadata=good, timeout=10)
        with grpc.insecure_channel(f"127.0.0.1:{ports['execution']}") as channel:
            # Risk approves a manual order worth a few cents; execution refuses it below the venue's minimum
            # notional before sending: a rejection, counted and notified.
            execution = execution_pb2_grpc.ExecutionServiceStub(channel)
            replies = []
            for symbol in ("BTCUSDT", "ETHUSDT") * 5:  # a guard of the moment (a pending entry) may refuse one
                tiny = execution_pb2.SubmitOrderRequest(
                    symbol=symbol,
                    side=common_pb2.SIDE_BUY,
                    order_type=risk_pb2.ORDER_TYPE_MARKET,
                    quantity=0.00001,
                    request_id=uuid.uuid4().hex,
                )
                replies.append(execution.SubmitOrder(tiny, metadata=good, timeout=20))
                if replies[-1].decision.approved:
                    break
                time.sleep(1)
            assert replies[-1].order.status == execution_pb2.ORDER_STATUS_REJECTED, replies
        deadline = time.monotonic() + 60
        while not any("HALTED" in t for t in webhook.texts()):
            assert time.monotonic() < deadline, "the notifier did not deliver the halt and the resume"
            time.sleep(0.5)
        # Records are handled asynchronously (the undecodable one may still be queued): scrape until every
        # family is there with a value, or give up and let the tests say which one is missing.
        deadline = time.monotonic() + 90
        while True:
            scrapes = {n: scrape(p) for n, p in metrics.items()}
            if complete(scrapes) or time.monotonic() > deadline:
                break
            time.sleep(1)
        yield {"scrapes": scrapes, "webhook": webhook}
    finally:
        for proc in procs.values():
            stop(proc)
        webhook.stop()
        bus.close()


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_exports_its_families_with_values(run: dict, service: str) -> None:
    families = run["scrapes"][service]
    for name in FAMILIES[service]:
        assert families.get(name), f"{service}: no {name} (has {sorted(families)})"
        if name not in MAY_BE_ZERO:
            assert value(families[name]) > 0, f"{service}: {name} is zero"
    # One port, one service: in separate processes nothing of another service shows up.
    others = {f.split("_")[1] for f in families if f.startswith("qe_")} - {"bus", service}
    assert not others, f"{service} exports other services' families: {others}"


def test_the_lag_family_has_a_sample_per_partition(run: dict) -> None:
    lag = run["scrapes"]["risk"]["qe_bus_consumer_lag"]
    partitions = {(s.labels["topic"], s.labels["partition"]) for s in lag}
    assert ("inference.signals.v1", "0") in partitions and len(partitions) >= 3


def test_decision_reasons_are_labelled_by_code(run: dict) -> None:
    reasons = {s.labels.get("reason") for s in run["scrapes"]["risk"]["qe_risk_decisions"]}
    assert "approved" in reasons and reasons - {"approved"}, reasons
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", r or "") for r in reasons), reasons


def test_notifier_counts_what_it_delivered(run: dict) -> None:
    sent = [s for s in run["scrapes"]["notify"]["qe_notify_messages"] if s.labels.get("outcome") == "sent"]
    assert sum(s.value for s in sent if s.name.endswith("_total")) >= 2
    assert any("HALTED" in t for t in run["webhook"].texts())


@pytest.mark.parametrize("dashboard", DASHBOARDS, ids=lambda p: p.stem)
def test_dashboards_query_only_exported_metrics(run: dict, dashboard: Path) -> None:
    exported = {s.name for families in run["scrapes"].values() for samples in families.values() for s in samples}
    doc = json.loads(dashboard.read_text())
    queried = {
        name
        for panel in doc["panels"]
        for target in panel.get("targets", [])
        for name in re.findall(r"\bqe_[a-z0-9_]+", target["expr"])
    }
    assert queried, f"{dashboard.name} queries nothing"
    missing = sorted(queried - exported)
    assert not missing, f"{dashboard.name} queries metrics no service exports: {missing}"
