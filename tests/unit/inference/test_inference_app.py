"""InferenceApp, inference's one wiring (inference/app.py): events in, signals out through the injected outbox,
with no bus, thread or clock; the market guard refuses before the features see an event."""

from __future__ import annotations

from quantumedge.inference.app import InferenceApp
from quantumedge.inference.domain.features import FeatureRow
from quantumedge.inference.signals import build_signal
from quantumedge.ingest.synthetic import SyntheticMarket
from quantumedge.settings import load_settings
from quantumedge.shared import bounds, topics
from quantumedge.v1 import signal_pb2


def _oracle(row: FeatureRow, now_ns: int) -> signal_pb2.Signal:
    return build_signal(row, (5,), [0.5], [0.0], ("oracle",), {5: 1.0}, now_ns)


def test_rows_become_signals_in_the_outbox_and_a_bad_event_is_refused() -> None:
    outbox: list[tuple[str, str | None, signal_pb2.Signal]] = []
    app = InferenceApp(load_settings().inference, lambda t, k, m: outbox.append((t, k, m)), signal_source=_oracle)
    events = list(SyntheticMarket(["BTCUSDT"], seed=3).events(1500))
    for event in events:
        assert app.on_market(event, event.exchange_time_ns) is None
        app.flush(event.exchange_time_ns)
    assert app.events_seen == len(events) and app.rows > 0
    assert len(outbox) == app.signals_published == app.rows  # the oracle signals every row
    assert {t for t, _, _ in outbox} == {topics.SIGNALS}
    assert all(k == m.symbol == "BTCUSDT" for _, k, m in outbox)
    # Decided at the time it was due (rowclock): created at or after the row's boundary.
    assert all(m.created_time_ns >= m.event_time_ns for _, _, m in outbox)

    bad = type(events[-1])()
    bad.CopyFrom(events[-1])
    bad.exchange_time_ns = 1  # 1970: refused as bad_time, never applied
    problem = app.on_market(bad, events[-1].exchange_time_ns)
    assert problem is not None and problem.code == bounds.BAD_TIME
    assert app.events_seen == len(events)


def test_no_models_no_signals() -> None:
    outbox: list = []
    app = InferenceApp(load_settings().inference, lambda t, k, m: outbox.append(m))
    for event in SyntheticMarket(["BTCUSDT"], seed=3).events(600):
        app.on_market(event, event.exchange_time_ns)
    app.tick(10**19)
    assert app.rows > 0 and outbox == [] and app.served_symbols() == []
