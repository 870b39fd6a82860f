"""The notifier against local servers that speak the Slack-webhook and Telegram Bot API protocols.

Tokens come from a real Vault-API server (OpenBao dev server); a rate-limited burst is summarised; Telegram's
429 retry_after is honoured; and an endpoint that hangs or fails never slows the pipeline's decisions.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable, Iterator

import hvac
import pytest

from quantumedge.notify.events import Notification
from quantumedge.notify.notifier import Notifier
from quantumedge.notify.service import NotifyService, notifier_for
from quantumedge.notify.settings import NotifySettings
from quantumedge.notify.sinks import TelegramSink, WebhookSink
from quantumedge.secrets.bootstrap import wait_kv2_ready
from quantumedge.secrets.settings import VaultSettings
from quantumedge.settings import load_settings
from quantumedge.shared import topics
from quantumedge.shared.bus import MemoryBus
from quantumedge.shared.config import SERVICE_NAMES
from quantumedge.v1 import common_pb2, control_pb2, execution_pb2
from tests.harness import VaultEndpoint
from tests.peers.notify_peers import TelegramPeer, WebhookPeer
from tests.support.procs import free_port


def wait_until(check: Callable[[], object], timeout_s: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def webhook() -> Iterator[WebhookPeer]:
    peer = WebhookPeer().start()
    yield peer
    peer.release.set()
    peer.stop()


@pytest.fixture
def telegram() -> Iterator[TelegramPeer]:
    peer = TelegramPeer(token=f"{free_port()}:{secrets.token_urlsafe(24)}").start()
    yield peer
    peer.stop()


def halt_event(limit: str = "daily_loss_limit") -> control_pb2.ControlEvent:
    return control_pb2.ControlEvent(
        event_id=uuid.uuid4().hex,
        time_ns=time.time_ns(),
        actor=common_pb2.Actor(subject="risk", source="automatic"),
        reason="automatic: daily loss 520 > 500",
        halt=control_pb2.HaltState(halted=True, limit=limit, value=520.0, threshold=500.0),
    )


def fill_report(i: int) -> execution_pb2.ExecutionReport:
    return execution_pb2.ExecutionReport(
        report_id=f"r{i}",
        time_ns=time.time_ns(),
        venue="paper",
        order=execution_pb2.Order(client_order_id=f"o{i}", symbol="BTCUSDT", side=1, quantity=0.001),
        fill=execution_pb2.Fill(client_order_id=f"o{i}", trade_id=f"t{i}", price=60000.0, quantity=0.001),
        fee_delta=0.06,
    )


def test_halt_and_breach_reach_webhook_and_telegram_with_the_bot_token_from_vault(
    vault: VaultEndpoint, webhook: WebhookPeer, telegram: TelegramPeer
) -> None:
    mount = f"qe-notify-{uuid.uuid4().hex[:8]}"
    client = hvac.Client(url=vault.addr, token=vault.token)
    client.sys.enable_secrets_engine("kv", path=mount, options={"version": "2"})
    wait_kv2_ready(client, mount)  # a fresh kv-v2 mount refuses writes for a moment
    try:
        client.secrets.kv.v2.create_or_update_secret(
            "quantumedge/notify",
            secret={"telegram_bot_token": telegram.token, "webhook_urls": webhook.url},
            mount_point=mount,
        )
        settings = load_settings(
            vault=VaultSettings(addr=vault.addr, token=vault.token, kv_mount=mount),
            notify=NotifySettings(enabled=True, telegram_chat_ids=["4242"], telegram_api_url=telegram.api_url),
        )
        notifier = notifier_for(settings)
        assert notifier is not None and sorted(s.name for s in notifier.sinks) == ["telegram", "webhook1"]
        bus = MemoryBus()
        service = NotifyService(settings, bus, notifier)
        service.start()
        try:
            bus.publish(topics.CONTROL, "halt", halt_event())
            for peer in (webhook, telegram):
                wait_until(lambda p=peer: len(p.texts()) >= 2, what="halt and breach notifications")
            for peer in (webhook, telegram):
                texts = peer.texts()
                assert any("HALTED" in t for t in texts) and any("daily_loss_limit" in t for t in texts), texts
            assert telegram.received[0]["chat_id"] == "4242"
            # The peer holds a text before its answer reaches the notifier, which counts it after.
            wait_until(
                lambda: notifier.counts["telegram:sent"] == 2 and notifier.counts["webhook1:sent"] == 2,
                what="both sends counted",
            )
            # Risk re-asserting the same state (after an invalid record under "halt") is no news.
            bus.publish(topics.CONTROL, "halt", halt_event())
            bus.publish(topics.REPORTS, "BTCUSDT", fill_report(1))  # handled after it: a barrier
            wait_until(lambda: len(webhook.texts()) >= 3, what="the fill notification")
            assert sum("HALTED" in t for t in webhook.texts()) == 1
        finally:
            service.stop()
    finally:
        client.sys.disable_secrets_engine(mount)


def test_a_burst_is_rate_limited_and_summarised_once_room_returns(webhook: WebhookPeer) -> None:
    now = [1000.0]
    notifier = Notifier(NotifySettings(burst=3, per_minute=6), [WebhookSink(webhook.url)])
    notifier.bucket.clock = lambda: now[0]
    notifier.bucket.stamp = now[0]
    notifier.start()
    try:
        for i in range(20):
            assert notifier.notify(Notification("fill", f"fill {i}"))
        wait_until(notifier.idle, what="the burst handled")
        assert webhook.texts() == ["fill 0", "fill 1", "fill 2"]
        assert notifier.counts["rate_limited"] == 17
        now[0] += 10  # one token back at 6 per minute
        notifier.notify(Notification("halt", "halted"))
        wait_until(lambda: len(webhook.texts()) == 4, what="the next message")
        assert "17 more notifications were held back" in webhook.texts()[-1]
    finally:
        notifier.stop()


def test_telegram_429_is_retried_after_the_wait_it_asks_for(telegram: TelegramPeer) -> None:
    telegram.flood_next, telegram.retry_after = 2, 7
    waits: list[float] = []
    sink = TelegramSink(telegram.api_url, telegram.token, "99")
    notifier = Notifier(NotifySettings(max_attempts=4), [sink], sleep=lambda s: waits.append(s) or False)
    notifier.start()
    try:
        notifier.notify(Notification("fill", "one fill"))
        wait_until(lambda: telegram.texts() == ["one fill"], what="the message after two 429s")
        wait_until(notifier.idle, what="the send counted")
        assert waits == [7, 7] and telegram.requests == 3
        assert notifier.counts["telegram:retried"] == 2 and notifier.counts["telegram:sent"] == 1
    finally:
        notifier.stop()


def test_a_wrong_bot_token_fails_once_and_is_counted(telegram: TelegramPeer) -> None:
    notifier = Notifier(NotifySettings(), [TelegramSink(telegram.api_url, "0:wrong", "1")]).start()
    try:
        notifier.notify(Notification("halt", "x"))
        wait_until(notifier.idle, what="the refused send")
        assert notifier.counts["telegram:failed"] == 1 and telegram.requests == 1
    finally:
        notifier.stop()


def test_switched_off_kinds_are_not_sent(webhook: WebhookPeer) -> None:
    notifier = Notifier(NotifySettings(events={"fill": False}), [WebhookSink(webhook.url)]).start()
    try:
        assert not notifier.notify(Notification("fill", "quiet"))
        assert notifier.notify(Notification("halt", "loud"))
        wait_until(lambda: webhook.texts() == ["loud"], what="the halt")
    finally:
        notifier.stop()


def test_a_hanging_and_a_failing_endpoint_do_not_slow_decisions(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole system in one process with notifications on: one webhook holds every request, the other
    answers 500. While the first one holds the notifier's thread, risk keeps deciding and fills keep coming."""
    from quantumedge.embedded import embedded_settings
    from quantumedge.runner import start

    hanging, failing = WebhookPeer("hanging").start(), WebhookPeer("failing").start()
    for name in SERVICE_NAMES:
        monkeypatch.setenv(f"QE_PORTS__{name.upper()}", str(free_port()))
    monkeypatch.setenv("QE_GRPC_HOST", "127.0.0.1")
    monkeypatch.setenv("QE_INGEST__SYNTHETIC_SPEED", "10")
    base = load_settings(notify=NotifySettings(enabled=True, webhook_urls=[hanging.url, failing.url], timeout_s=60))
    settings = embedded_settings(base, steps=0)
    bus = MemoryBus()
    running = start(list(SERVICE_NAMES), settings, bus)
    try:
        wait_until(hanging.holding.is_set, 120, "a notification held by the hanging endpoint")
        held_at = sum(bus.end_offsets(topics.DECISIONS))
        wait_until(lambda: sum(bus.end_offsets(topics.DECISIONS)) >= held_at + 50, 120, "decisions while held")
        assert not hanging.release.is_set() and hanging.texts() == [], "decided while the endpoint held a request"
        hanging.release.set()
        wait_until(lambda: running.notifier.counts.get("webhook2:failed", 0) >= 1, 60, "the failing sink counted")
        assert failing.requests >= settings.notify.max_attempts  # retried, then given up and counted
    finally:
        hanging.release.set()
        running.stop(grace_s=1)
        hanging.stop()
        failing.stop()


def test_a_failing_service_is_notified_by_its_own_process(webhook: WebhookPeer) -> None:
    from quantumedge.runner import Running, serve_forever

    class Dying:
        def healthy(self) -> bool:
            return False

    class Server:
        def set_serving(self, _serving: bool) -> None:
            pass

    notifier = Notifier(NotifySettings(), [WebhookSink(webhook.url)]).start()
    running = Running(load_settings(), MemoryBus(), services={"risk": Dying()}, servers={"risk": Server()})
    running.notifier = notifier
    try:
        serve_forever(running, check_every_s=0.01)
        wait_until(lambda: webhook.texts() == ["QuantumEdge risk failed and stops"], what="the failure notification")
    finally:
        notifier.stop()
