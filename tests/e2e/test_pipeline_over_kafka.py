"""The four services as four processes on a real Kafka broker: synthetic ticks become paper fills,
and an undecodable message lands on the dead-letter topic while the pipeline keeps going."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import dlq_pb2, risk_pb2
from tests.support.otlp_sink import OtlpSink
from tests.support.procs import fills, free_port, kafka_env, print_logs, spawn, stop, synthetic_env, wait_serving
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]
SERVICES = ("execution", "risk", "inference", "ingest")


@pytest.fixture(scope="module")
def pipeline(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    logs = tmp_path_factory.mktemp("pipeline-logs")
    ports = {name: free_port() for name in SERVICES}
    env = {
        **kafka_env(kafka_bootstrap, prefix, ports),
        # Paced so the pipeline is still running when the test injects a bad record.
        **synthetic_env(20),
        "QE_DATA_DIR": str(logs / "var"),
    }
    sink = OtlpSink().__enter__()
    env |= {
        "QE_TELEMETRY__TRACES": "otlp",
        "QE_TELEMETRY__OTLP_ENDPOINT": f"127.0.0.1:{sink.port}",
        # Trace half the ticks: most ticks end without an order, so fewer would leave few traced orders.
        "QE_TELEMETRY__SAMPLE_RATIO": "0.5",
    }
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix))
    bus.ensure_topics()
    procs = {}
    try:
        for name in SERVICES:  # downstream first, so nothing upstream publishes goes unheard
            procs[name] = spawn(["serve", name], env, logs / f"{name}.log")
            wait_serving(ports[name], proc=procs[name])
        yield {"bus": bus, "procs": procs, "ports": ports, "logs": logs, "prefix": prefix, "sink": sink}
    finally:
        codes = {name: stop(p) for name, p in procs.items()}
        bus.close()
        sink.__exit__()
        print_logs(logs, codes, SERVICES)


def test_synthetic_ticks_become_paper_fills(pipeline: dict) -> None:
    bus: KafkaBus = pipeline["bus"]
    wait_for(lambda: len(fills(bus)) > 0, 240, "a paper fill on execution.reports.v1")
    # Fills first, then decisions: a decision always precedes its fills, so none is missed by reading later.
    filled = fills(bus)
    decisions = [risk_pb2.RiskDecision.FromString(r.value) for r in bus.read_all(topics.DECISIONS)]
    approved = {d.intent.intent_id for d in decisions if d.approved}
    # Every fill belongs to an order made from an intent that risk approved.
    assert {f.order.intent_id for f in filled} <= approved
    assert all(f.fill.quantity > 0 and f.fill.price > 0 for f in filled)
    assert bus.read_all(topics.SIGNALS), "inference published no signal"
    for name, proc in pipeline["procs"].items():
        assert proc.poll() is None, f"{name} died"


def test_undecodable_message_goes_to_dlq_and_pipeline_keeps_going(pipeline: dict) -> None:
    bus: KafkaBus = pipeline["bus"]
    garbage = b"\x0a\xff\xff\xff\xff not a MarketEvent"
    bus.publish(topics.BOOK, "BTCUSDT", garbage)
    bus.flush()

    def garbage_dead_lettered() -> bool:
        letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
        return any(letter.value == garbage and letter.reason for letter in letters)

    wait_for(garbage_dead_lettered, 60, "the bad record on dlq.v1")
    letters = [dlq_pb2.DeadLetter.FromString(r.value) for r in bus.read_all(topics.DLQ)]
    ours = [x for x in letters if x.value == garbage]
    assert all(x.source_topic == topics.BOOK and "undecodable" in x.reason for x in ours)
    # The pipeline goes on: new signals keep arriving after the bad record.
    before = len(bus.read_all(topics.SIGNALS))
    wait_for(lambda: len(bus.read_all(topics.SIGNALS)) > before, 60, "signals after the bad record")
    for name, proc in pipeline["procs"].items():
        assert proc.poll() is None, f"{name} died after a bad record"


def test_one_trace_spans_a_tick_and_the_order_it_caused(pipeline: dict) -> None:
    """Read from the OTLP exporter: a trace rooted at ingest reaches the venue call in execution."""
    sink: OtlpSink = pipeline["sink"]
    wait_for(lambda: len(fills(pipeline["bus"])) > 0, 240, "a paper fill")

    def complete_traces() -> list[str]:
        # Complete = all four services took part and execution called the venue (a rejected intent
        # also reaches execution, but places no order).
        # Exported = every span's parent has reached the sink too (a parent ends, and is batched, after
        # its children, so a trace can be seen before it is whole).
        by_trace: dict[str, set[str]] = {}
        spans_of: dict[str, list] = {}
        ordered: set[str] = set()
        for span in sink.snapshot():
            by_trace.setdefault(span.trace_id, set()).add(span.service)
            spans_of.setdefault(span.trace_id, []).append(span)
            if span.service == "execution" and span.attributes.get("qe.client_order_id"):
                ordered.add(span.trace_id)

        def whole(trace: str) -> bool:
            ids = {s.span_id for s in spans_of[trace]}
            return all(not s.parent_span_id or s.parent_span_id in ids for s in spans_of[trace])

        return [t for t, services in by_trace.items() if set(SERVICES) <= services and t in ordered and whole(t)]

    wait_for(lambda: complete_traces(), 120, "a trace from a tick to the venue call it caused")
    trace_id = complete_traces()[0]
    spans = [s for s in sink.snapshot() if s.trace_id == trace_id]
    roots = [s for s in spans if not s.parent_span_id]
    assert len(roots) == 1 and roots[0].service == "ingest"
    # Every other span hangs off a parent inside the same trace: one unbroken chain.
    ids = {s.span_id for s in spans}
    assert all(s.parent_span_id in ids for s in spans if s is not roots[0])
    venue_spans = [s for s in spans if s.service == "execution" and s.attributes.get("qe.client_order_id")]
    assert venue_spans, f"no venue call in the trace: {sorted({(s.service, s.name) for s in spans})}"
