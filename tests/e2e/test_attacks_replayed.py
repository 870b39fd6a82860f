"""The attacks of issue 11, replayed against risk and execution running as separate `quantumedge serve`
processes on a real Kafka broker. Each must fail: nothing reaches the venue that risk did not sign, no record
lifts a halt or raises a limit unless risk signed it now, and refusals neither grow control.v1 nor starve
anything. Every refusal is asserted by its reason code, in the dead-letter topic and in the audit topic."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from kafka import KafkaAdminClient

from quantumedge.shared import signing, topics
from quantumedge.shared.auth import token_sha256
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.shared.signing import Keyring, PublicKeyring, SigningKey
from quantumedge.v1 import (
    common_pb2,
    control_pb2,
    dlq_pb2,
    execution_pb2,
    execution_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)
from tests.support.execution_builders import SYMBOL, decision, top, trade
from tests.support.procs import free_port, kafka_env, spawn, stop, wait_serving
from tests.support.signing import SESSION_KEY, SESSION_KEYRING, signed_for_serve
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICES = ("execution", "risk")
OPERATOR = "e2e-operator"
BUY, SELL = common_pb2.SIDE_BUY, common_pb2.SIDE_SELL
# 600 at 100 = 60,000 of notional: 60x risk's default max_order_notional.
HUGE = 600.0
# A key the services knew and have retired (as after `secrets rotate --retire-signing-key`).
RETIRED_KEY = SigningKey.generate("retired-1")
RETIRED = Keyring(PublicKeyring({RETIRED_KEY.key_id: RETIRED_KEY.public_raw()}), RETIRED_KEY)


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Execution and risk as two processes on the shared broker, on topics of this module only."""
    tmp_path = tmp_path_factory.mktemp("attacks")
    prefix = f"e2e-attacks-{uuid.uuid4().hex[:8]}."
    token = secrets.token_urlsafe(24)
    ports = {name: free_port() for name in SERVICES}
    env = {
        **kafka_env(kafka_bootstrap, prefix, ports),
        "QE_SYMBOLS": f'["{SYMBOL}"]',
        "QE_DATA_DIR": str(tmp_path / "var"),
        "QE_VAULT__OPERATOR_TOKEN_SHA256": f"{OPERATOR}:{token_sha256(token)}",
        "QE_EXECUTION__HEARTBEAT_INTERVAL_S": "1",
        # No metrics endpoints: their fixed default ports may be held by another run on a shared machine.
        **{f"QE_PORTS__{name.upper()}_METRICS": "0" for name in SERVICES},
    }
    env["QE_SIGNING__PUBLIC_KEYS"] += f",{RETIRED_KEY.key_id}:{RETIRED_KEY.public_b64()}"
    env["QE_SIGNING__RETIRED_KEYS"] = RETIRED_KEY.key_id
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    world: dict = {"bus": bus, "procs": {}, "env": env, "ports": ports, "logs": tmp_path}
    channels: dict[str, grpc.Channel] = {}
    try:
        for name in SERVICES:
            _start(world, name)
            channels[name] = grpc.insecure_channel(f"127.0.0.1:{ports[name]}")
        world |= {
            "risk": risk_pb2_grpc.RiskServiceStub(channels["risk"]),
            "execution": execution_pb2_grpc.ExecutionServiceStub(channels["execution"]),
            "operator": (("authorization", f"Bearer {token}"),),
        }
        yield world
    finally:
        for channel in channels.values():
            channel.close()
        codes = {name: stop(p) for name, p in world["procs"].items()}
        bus.close()
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-e2e-attacks")
        with contextlib.suppress(Exception):
            admin.delete_topics([f"{prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
        admin.close()
        for name in SERVICES:
            log_file = tmp_path / f"{name}.log"
            if log_file.exists():
                print(f"--- {name} (exit {codes.get(name)}) ---\n{log_file.read_text()[-3000:]}")


def _start(world: dict, name: str) -> None:
    world["procs"][name] = spawn(["serve", name], world["env"], world["logs"] / f"{name}.log")
    wait_serving(world["ports"][name], proc=world["procs"][name])


def _publish_market(bus: KafkaBus) -> None:
    """A trade and a deep top of book at 100: fresh data for risk, a book for the paper venue."""
    now = time.time_ns()
    bus.publish(topics.TRADES, SYMBOL, trade(now, 100.0, 1.0))
    bus.publish(topics.BOOK, SYMBOL, top(now + 1, 99.99, 50.0, 100.0, 50.0))
    bus.flush()


def _decode(topic: str, values: list[bytes]) -> list:
    cls = topics.MESSAGE_TYPES[topic]
    return [cls.FromString(v) for v in values if v]


def _letters(bus: KafkaBus, topic: str) -> list[dlq_pb2.DeadLetter]:
    return [d for d in _decode(topics.DLQ, [r.value for r in bus.read_all(topics.DLQ)]) if d.source_topic == topic]


def _audits(bus: KafkaBus) -> list[control_pb2.ControlEvent]:
    return _decode(topics.AUDIT, [r.value for r in bus.read_all(topics.AUDIT)])


def _orders(stack: dict) -> dict[str, execution_pb2.Order]:
    listed = stack["execution"].ListOrders(execution_pb2.ListOrdersRequest(), timeout=10).orders
    return {o.intent_id: o for o in listed}


def _status(stack: dict) -> execution_pb2.ExecutionServiceGetStatusResponse:
    return stack["execution"].GetStatus(execution_pb2.ExecutionServiceGetStatusRequest(), timeout=10)


def _submit(stack: dict, request_id: str, qty: float = 0.1) -> execution_pb2.SubmitOrderResponse:
    """An operator's manual order: SubmitOrder forwards the token to risk's ReviewOrder. Tried again under a new
    request id until risk approves (it approves nothing before execution's first heartbeat and fresh data)."""
    attempts = iter(range(1000))

    def approved() -> execution_pb2.SubmitOrderResponse | None:
        _publish_market(stack["bus"])
        request = execution_pb2.SubmitOrderRequest(
            symbol=SYMBOL,
            side=BUY,
            order_type=risk_pb2.ORDER_TYPE_MARKET,
            quantity=qty,
            request_id=f"{request_id}-{next(attempts)}",
        )
        answer = stack["execution"].SubmitOrder(request, metadata=stack["operator"], timeout=15)
        return answer if answer.decision.approved else None

    return wait_for(approved, 30, f"risk's approval of {request_id}")  # type: ignore[return-value]


def test_unauthenticated_review_order_is_refused_and_nothing_is_traded(stack: dict) -> None:
    risk, bus = stack["risk"], stack["bus"]
    _publish_market(bus)
    # The attack: a manual SELL of 1 BTC, reviewed without any credential.
    intent = risk_pb2.OrderIntent(
        intent_id="attack-review", symbol=SYMBOL, side=SELL, quantity=1.0, order_type=risk_pb2.ORDER_TYPE_MARKET
    )
    for metadata in ((), (("authorization", "Bearer not-the-token"),)):
        with pytest.raises(grpc.RpcError) as err:
            risk.ReviewOrder(risk_pb2.ReviewOrderRequest(intent=intent), metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # The operator's path still works: SubmitOrder forwards the caller's token to ReviewOrder.
    answer = _submit(stack, "op-1")
    assert answer.order.client_order_id and answer.decision.signature.key_id == SESSION_KEY.key_id

    def review_audits() -> list[control_pb2.ControlEvent]:
        return [a for a in _audits(bus) if a.audit.method.endswith("RiskService/ReviewOrder")]

    audits = wait_for(lambda: [a for a in review_audits() if a.audit.allowed], 15, "the allowed review's audit")
    assert {a.actor.subject for a in audits} == {OPERATOR}  # the audit names the operator, not "operator"
    refused = [a for a in review_audits() if not a.audit.allowed]
    assert [a.audit.reason_code for a in refused] == ["unauthenticated"] * 2
    assert all(a.actor.subject == "anonymous" and a.actor.source.startswith("ipv4:127.0.0.1") for a in refused)
    published = _decode(topics.DECISIONS, [r.value for r in bus.read_all(topics.DECISIONS)])
    assert not [d for d in published if d.intent.intent_id == "attack-review"]
    assert "attack-review" not in _orders(stack)
    assert not _control_records(bus), "refusals and reviews write nothing to control.v1"


def _control_records(bus: KafkaBus) -> list:
    return bus.read_all(topics.CONTROL)


def test_forged_unsigned_replayed_and_old_decisions_go_to_the_dlq_never_the_venue(stack: dict) -> None:
    bus = stack["bus"]
    genuine_answer = _submit(stack, "genuine")
    genuine_id = genuine_answer.decision.intent.intent_id
    wait_for(lambda: _orders(stack).get(genuine_id), 15, "the genuine manual order")
    record = next(
        r
        for r in bus.read_all(topics.DECISIONS)
        if risk_pb2.RiskDecision.FromString(r.value).intent.intent_id == genuine_id
    )
    placed = _status(stack).orders_placed

    outsider_key = SigningKey.generate("attacker-1")
    outsider = Keyring(PublicKeyring({outsider_key.key_id: outsider_key.public_raw()}), outsider_key)
    same_id_key = SigningKey.generate(SESSION_KEY.key_id)  # risk's key id, the attacker's key
    same_id = Keyring(PublicKeyring({same_id_key.key_id: same_id_key.public_raw()}), same_id_key)
    tampered = risk_pb2.RiskDecision.FromString(record.value)
    tampered.intent.quantity = HUGE  # the genuine signature, a 60x bigger order
    attacks = {
        "forged-unknown-key": (outsider.sign(decision("forged-unknown-key", qty=HUGE), topics.DECISIONS, SYMBOL), None),
        "forged-same-key-id": (same_id.sign(decision("forged-same-key-id", qty=HUGE), topics.DECISIONS, SYMBOL), None),
        "unsigned": (decision("unsigned", qty=HUGE), None),
        "old": (signed_for_serve(decision("old", qty=0.1, decided_ns=time.time_ns() - 600 * 10**9)), None),
        "retired": (RETIRED.sign(decision("retired", qty=0.1), topics.DECISIONS, SYMBOL), None),
        "tampered": (None, tampered.SerializeToString()),
        "replayed": (None, record.value),  # the genuine record, byte for byte, written again
    }
    expected = {
        "forged-unknown-key": signing.UNKNOWN_KEY,
        "forged-same-key-id": signing.BAD_SIGNATURE,
        "unsigned": signing.UNSIGNED,
        "old": signing.STALE,
        "retired": signing.RETIRED_KEY,
        "tampered": signing.BAD_SIGNATURE,
        "replayed": signing.REPLAYED,
    }
    for message, raw in attacks.values():
        bus.publish(topics.DECISIONS, SYMBOL, raw if raw is not None else message)
    bus.flush()

    def refused() -> dict[str, str]:
        out = {}
        for letter in _letters(bus, topics.DECISIONS):
            d = risk_pb2.RiskDecision.FromString(letter.value)
            name = "tampered" if d.intent.quantity == HUGE and d.intent.intent_id == genuine_id else d.intent.intent_id
            out["replayed" if name == genuine_id else name] = letter.reason_code
        return out if len(out) >= len(expected) else {}

    assert wait_for(refused, 30, "seven dead letters") == expected
    assert all(letter.consumer_group == "execution" for letter in _letters(bus, topics.DECISIONS))
    audited = [
        a.audit.reason_code
        for a in _audits(bus)
        if a.audit.service == "execution" and a.audit.method == f"consume {topics.DECISIONS}"
    ]
    assert Counter(audited) == Counter(expected.values())
    orders = _orders(stack)
    # A genuine but stale decision is recorded as a REJECTED order (so risk releases its pending entry);
    # it is never sent (orders_placed below). No other attack leaves an order at all.
    recorded = {name: orders[name] for name in set(expected) & set(orders)}
    assert set(recorded) <= {"old"} and orders[genuine_id].quantity == pytest.approx(0.1)
    assert all(
        o.status == execution_pb2.ORDER_STATUS_REJECTED and o.reject_code == signing.STALE for o in recorded.values()
    )
    status = _status(stack)
    assert status.orders_placed == placed, "an attack reached the venue"

    # A decision risk did sign but that execution's own hard cap forbids: refused with a report risk reads.
    signed_big = signed_for_serve(decision("over-cap", qty=HUGE))
    bus.publish(topics.DECISIONS, SYMBOL, signed_big)
    bus.flush()
    over = wait_for(lambda: _orders(stack).get("over-cap"), 15, "execution's refusal of the over-cap intent")
    assert over.status == execution_pb2.ORDER_STATUS_REJECTED and over.reject_code == "CAP_ORDER_NOTIONAL"
    reports = _decode(topics.REPORTS, [r.value for r in bus.read_all(topics.REPORTS)])
    assert [r.order.reject_code for r in reports if r.order.intent_id == "over-cap"] == ["CAP_ORDER_NOTIONAL"]
    assert _status(stack).orders_placed == placed


def _halted(stack: dict) -> tuple[bool, bool]:
    risk = stack["risk"].GetStatus(risk_pb2.RiskServiceGetStatusRequest(), timeout=10).halted
    return risk, _status(stack).halted


def _last_halt_record(bus: KafkaBus):
    return [r for r in bus.read_all(topics.CONTROL) if r.key == b"halt"][-1]


def test_forged_replayed_and_tombstoned_control_records_never_lift_a_halt(stack: dict) -> None:
    bus, risk, operator = stack["bus"], stack["risk"], stack["operator"]
    risk.Halt(risk_pb2.HaltRequest(reason="first"), metadata=operator, timeout=10)
    wait_for(lambda: _halted(stack) == (True, True), 20, "both halted")
    risk.Resume(risk_pb2.ResumeRequest(reason="over"), metadata=operator, timeout=10)
    wait_for(lambda: _halted(stack) == (False, False), 20, "both resumed")
    genuine_resume = _last_halt_record(bus).value  # signed by risk: halted=false
    risk.Halt(risk_pb2.HaltRequest(reason="incident"), metadata=operator, timeout=10)
    wait_for(lambda: _halted(stack) == (True, True), 20, "both halted again")
    limits = risk.GetLimits(risk_pb2.GetLimitsRequest(), timeout=10).limits
    letters_before = len(_letters(bus, topics.CONTROL))

    now = time.time_ns()
    resume = control_pb2.ControlEvent(
        event_id="forged-resume", time_ns=now, reason="attacker", halt=control_pb2.HaltState(halted=False, since_ns=now)
    )
    outsider_key = SigningKey.generate("attacker-2")
    outsider = Keyring(PublicKeyring({outsider_key.key_id: outsider_key.public_raw()}), outsider_key)
    forged = control_pb2.ControlEvent()
    forged.CopyFrom(resume)
    forged.event_id = "forged-resume-2"
    everything = risk_pb2.RiskLimits()
    everything.CopyFrom(limits)
    for cap in ("max_order_notional", "max_symbol_notional", "max_gross_exposure", "daily_loss_limit"):
        setattr(everything, cap, 1e9)
    raise_limits = control_pb2.ControlEvent(event_id="forged-limits", time_ns=now, limits=everything)
    bus.publish(topics.CONTROL, "halt", genuine_resume)  # an old genuine Resume, written again
    bus.publish(topics.CONTROL, "halt", resume)  # unsigned
    bus.publish(topics.CONTROL, "halt", outsider.sign(forged, topics.CONTROL, "halt"))  # another key
    bus.publish(topics.CONTROL, "limits", raise_limits)  # every cap to 1e9, unsigned
    bus.flush()
    bus.producer.send(bus.physical(topics.CONTROL), key=b"halt", value=None).get(timeout=30)  # a tombstone

    expected = {signing.REPLAYED, signing.UNSIGNED, signing.UNKNOWN_KEY, signing.TOMBSTONE}

    def refused_by(group: str) -> list[str]:
        return [d.reason_code for d in _letters(bus, topics.CONTROL)[letters_before:] if d.consumer_group == group]

    for group in ("risk", "execution"):
        codes = wait_for(lambda g=group: len(refused_by(g)) >= 5 and refused_by(g), 30, f"{group}'s dead letters")
        assert set(codes) == expected and Counter(codes)[signing.UNSIGNED] == 2, (group, codes)
    assert _halted(stack) == (True, True)
    assert risk.GetLimits(risk_pb2.GetLimitsRequest(), timeout=10).limits == limits
    refusals = {a.audit.service for a in _audits(bus) if a.audit.method == f"consume {topics.CONTROL}"}
    assert refusals == {"risk", "execution"}

    # Risk published its state again: the last word under "halt" (what compaction keeps) is genuine and halted.
    def reasserted() -> control_pb2.ControlEvent | None:
        last = _last_halt_record(bus)
        event = control_pb2.ControlEvent.FromString(last.value) if last.value else None
        ok = event is not None and SESSION_KEYRING.verify(event, topics.CONTROL, "halt").ok
        return event if ok and event.halt.halted else None

    wait_for(reasserted, 20, "risk re-asserting the halt")
    # A restarted risk reads control.v1 whole and comes back halted, with its limits.
    assert stop(stack["procs"]["risk"]) == 0
    _start(stack, "risk")
    assert _halted(stack) == (True, True)
    assert risk.GetLimits(risk_pb2.GetLimitsRequest(), timeout=10).limits == limits

    risk.Resume(risk_pb2.ResumeRequest(reason="checked"), metadata=operator, timeout=10)
    wait_for(lambda: _halted(stack) == (False, False), 20, "resumed by the operator")


def test_a_refused_call_flood_does_not_grow_control_and_the_operator_still_halts(stack: dict) -> None:
    bus, risk = stack["bus"], stack["risk"]
    control_before = len(bus.read_all(topics.CONTROL))
    audits_before = len(_audits(bus))
    codes: Counter = Counter()
    started = time.monotonic()
    for _ in range(2000):
        try:
            risk.Halt(risk_pb2.HaltRequest(reason="flood"), timeout=10)
        except grpc.RpcError as exc:
            codes[exc.code()] += 1
    elapsed = time.monotonic() - started
    assert codes[grpc.StatusCode.UNAUTHENTICATED] + codes[grpc.StatusCode.RESOURCE_EXHAUSTED] == 2000
    assert codes[grpc.StatusCode.RESOURCE_EXHAUSTED] >= 1900  # throttled: answered without a token check
    # The kill switch is never throttled: the operator's Halt from the same address works at once.
    assert risk.Halt(risk_pb2.HaltRequest(reason="real"), metadata=stack["operator"], timeout=10).halted
    risk.Resume(risk_pb2.ResumeRequest(reason="done"), metadata=stack["operator"], timeout=10)
    wait_for(lambda: len(_audits(bus)) >= audits_before + 12, 15, "the flood's audits and the operator's")
    time.sleep(2)  # anything still in flight lands
    assert len(bus.read_all(topics.CONTROL)) == control_before + 2  # the operator's halt and resume only
    refused = [a for a in _audits(bus)[audits_before:] if not a.audit.allowed]
    print(f"flood: {dict(codes)} in {elapsed:.1f} s -> {len(refused)} refusal audits on audit.v1, control.v1 +0")
    # A burst of 10, then one per refill (30 a minute), whatever the flood's size.
    assert len(refused) <= 10 + int(elapsed / 2) + 2
    assert {a.audit.reason_code for a in refused} <= {"unauthenticated", "throttled"}


@pytest.fixture
def ingest(kafka_bootstrap: str, tmp_path: Path) -> Iterator[int]:
    prefix = f"e2e-streams-{uuid.uuid4().hex[:8]}."
    port = free_port()
    env = {
        **kafka_env(kafka_bootstrap, prefix, {"ingest": port}),
        "QE_SYMBOLS": f'["{SYMBOL}"]',
        "QE_INGEST__SOURCE": "synthetic",
        "QE_INGEST__SYNTHETIC_STEPS": "0",
    }
    proc = spawn(["serve", "ingest"], env, tmp_path / "ingest.log")
    try:
        wait_serving(port, proc=proc)
        yield port
    finally:
        stop(proc)
        print((tmp_path / "ingest.log").read_text()[-2000:])
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-e2e-streams")
        with contextlib.suppress(Exception):
            admin.delete_topics([f"{prefix}{spec.name}" for spec in topics.ALL], timeout_ms=30_000)
        admin.close()


def test_64_idle_subscribe_streams_leave_ingest_health_serving(ingest: int) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from quantumedge.v1 import ingest_pb2, ingest_pb2_grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{ingest}")
    stub = ingest_pb2_grpc.IngestServiceStub(channel)
    # Gaps are rare: these streams stay open and idle, as a watcher that never reads would keep them.
    calls = [stub.Subscribe(ingest_pb2.SubscribeRequest(symbol=SYMBOL, kinds=["gap"])) for _ in range(64)]
    exhausted: list[grpc.RpcError] = []

    def first(call) -> None:
        try:
            next(call)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                exhausted.append(exc)

    for call in calls:
        threading.Thread(target=first, args=(call,), daemon=True).start()
    try:
        # The default max_streams (8) are served and stay idle; the rest are refused at once.
        wait_for(lambda: len(exhausted) >= 64 - 8, 20, "the streams over the limit refused")
        health = health_pb2_grpc.HealthStub(channel)
        for _ in range(30):
            answer = health.Check(health_pb2.HealthCheckRequest(), timeout=3)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            time.sleep(0.1)
        assert stub.GetStatus(ingest_pb2.IngestServiceGetStatusRequest(), timeout=3).running
        assert len(exhausted) == 64 - 8
    finally:
        for call in calls:
            call.cancel()
        channel.close()
