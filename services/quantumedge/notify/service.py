"""`quantumedge notify`: reads control.v1 and execution.reports.v1 in its own consumer group and notifies.

It is a consumer like any other: trading never waits on it, and a failing endpoint only costs its own
thread. Secrets (webhook URLs, the Telegram bot token) are read from Vault at `notify.vault_path`; the
embedded run (`quantumedge up`) reads none, so there only `notify.webhook_urls` apply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from quantumedge.notify.events import DailySummary, Notification, from_control, from_report
from quantumedge.notify.notifier import Notifier, Sink
from quantumedge.notify.sinks import TelegramSink, WebhookSink
from quantumedge.shared import topics
from quantumedge.shared.bus import Bus, Record
from quantumedge.shared.bus.loop import ConsumerLoop
from quantumedge.shared.errors import OperatorError
from quantumedge.shared.logs import get_logger, register_secret
from quantumedge.v1 import control_pb2, execution_pb2

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root the runner hands in; no run-time import

log = get_logger(__name__)


def vault_secrets(settings: Settings, store: Any = None) -> dict[str, str]:
    """{"webhook_urls": "...", "telegram_bot_token": "..."} from Vault; {} in embedded mode or without Vault."""
    if not settings.behaviours.notify_secrets_from_vault or not settings.vault.addr:
        return {}
    from quantumedge.secrets.errors import SecretUnavailable
    from quantumedge.secrets.store import connect

    try:
        store = store or connect(settings.vault, "notify")
        data = store.read(settings.notify.vault_path)
    except SecretUnavailable as exc:
        raise OperatorError(
            f"notification secrets unavailable at {settings.notify.vault_path}: {exc}; store them with "
            "`bao kv put` there or set QE_NOTIFY__VAULT_PATH",
            setting="QE_NOTIFY__VAULT_PATH",
            reason="no_secret",
        ) from None
    out = {k: str(v) for k, v in dict(data).items()}
    for value in out.values():
        register_secret(value)
    return out


def build_sinks(settings: Settings, secrets: dict[str, str]) -> list[Sink]:
    cfg = settings.notify
    sinks: list[Sink] = []
    urls = [*cfg.webhook_urls, *filter(None, (u.strip() for u in secrets.get("webhook_urls", "").split(",")))]
    for i, url in enumerate(urls):
        sinks.append(WebhookSink(url, name=f"webhook{i + 1}", timeout_s=cfg.timeout_s))
    token = secrets.get("telegram_bot_token", "")
    if token:
        for chat in cfg.telegram_chat_ids:
            sinks.append(TelegramSink(cfg.telegram_api_url, token, chat, timeout_s=cfg.timeout_s))
    return sinks


class NotifyService:
    name = "notify"

    def __init__(self, settings: Settings, bus: Bus, notifier: Notifier, clock: Callable[[], int] = time.time_ns):
        self.settings = settings
        self.bus = bus
        self.notifier = notifier
        self.clock = clock
        self.summary = DailySummary()
        self._loop: ConsumerLoop | None = None
        # The halt state last announced: risk publishes an unchanged state again after an invalid record under
        # "halt" (and a record can be redelivered), which is no news.
        self._last_halt: control_pb2.HaltState | None = None

    def start(self) -> None:
        self.notifier.start()
        handlers = {topics.CONTROL: self._on_control, topics.REPORTS: self._on_report}
        self._loop = ConsumerLoop(self.bus, group=self.name, handlers=handlers)
        self._loop.start()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop()
        self.notifier.stop()

    def healthy(self) -> bool:
        return self._loop is None or (self._loop.alive and self._loop.error is None)

    def _send(self, notifications: list[Notification]) -> None:
        for notification in notifications:
            self.notifier.notify(notification)

    def _on_control(self, event: control_pb2.ControlEvent, _record: Record) -> None:
        if event.WhichOneof("payload") == "halt":
            if self._last_halt == event.halt:
                return
            self._last_halt = control_pb2.HaltState()
            self._last_halt.CopyFrom(event.halt)
        found = from_control(event)
        if any(n.kind == "halt" for n in found):
            self._send([n for n in [self.summary.add_halt(self.clock())] if n])
        self._send(found)

    def _on_report(self, report: execution_pb2.ExecutionReport, _record: Record) -> None:
        done = self.summary.add_report(report, self.clock())
        self._send([n for n in [done] if n] + from_report(report))


def notifier_for(settings: Settings, store: Any = None) -> Notifier | None:
    """The process's notifier when notifications are on and have somewhere to go."""
    if not settings.notify.enabled:
        return None
    sinks = build_sinks(settings, vault_secrets(settings, store))
    if not sinks:
        raise OperatorError(
            "notifications are on but go nowhere: put webhook_urls or telegram_bot_token in Vault at "
            f"{settings.notify.vault_path} (with QE_NOTIFY__TELEGRAM_CHAT_IDS), or set QE_NOTIFY__WEBHOOK_URLS",
            setting="QE_NOTIFY__WEBHOOK_URLS",
            reason="no_destination",
        )
    return Notifier(settings.notify, sinks)


def run_notify(settings: Settings) -> int:
    """`quantumedge notify`: until SIGTERM; a metrics endpoint of its own on ports.notify_metrics."""
    from quantumedge.shared.bus import make_bus
    from quantumedge.shared.bus.reachable import require_broker
    from quantumedge.shared.metrics_http import start_metrics_server
    from quantumedge.shared.process_signals import install_signal_handlers
    from quantumedge.shared.telemetry import init_telemetry, prometheus_registry, shutdown_telemetry

    settings = settings.model_copy(update={"notify": settings.notify.model_copy(update={"enabled": True})})
    notifier = notifier_for(settings)
    assert notifier is not None
    init_telemetry("notify", settings.telemetry)
    if settings.bus == "kafka":
        require_broker(settings.kafka.bootstrap)
    bus = make_bus(settings, identity="notify")  # its own Kafka principal: reads control and reports only
    service = NotifyService(settings, bus, notifier)
    import threading

    stop = threading.Event()
    install_signal_handlers(stop)
    service.start()
    # Listening once it has joined its group: a scrape that answers means notifications flow from here on.
    registry = prometheus_registry()
    metrics = None
    if registry is not None and settings.ports.notify_metrics:
        metrics = start_metrics_server("notify", settings.ports.notify_metrics, settings.grpc_host, registry, False)
    log.info("notifier started", extra={"sinks": [s.name for s in notifier.sinks]})
    try:
        while not stop.wait(0.5):
            if not service.healthy():
                return 1
    finally:
        service.stop()
        if metrics is not None:
            metrics.stop()
        bus.close()
        shutdown_telemetry()
    return 0
