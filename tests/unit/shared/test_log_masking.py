"""A registered secret never reaches a log line or an exported span in clear: not in a nested extra, not in an
exception's text or traceback, not in a thread's (or the main thread's) uncaught exception, and not when it
holds the characters JSON escapes (`"` and `\\`). Tracebacks stay in the line, masked."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quantumedge.shared.logs import MASK, JsonFormatter, install_masking_filter, mask_value, register_secret

REPO = Path(__file__).resolve().parents[3]


def _secret(kind: str) -> str:
    # Made at runtime: nothing key-like sits in the source. The kinds are what JSON and repr() escape.
    core = secrets.token_hex(12)
    return {"plain": f"v-{core}", "quote": f'q"{core}"x', "backslash": f"b\\{core}\\n", "both": f'z"\\{core}'}[kind]


KINDS = ("plain", "quote", "backslash", "both")


def _forms(value: str) -> list[str]:
    """Every way the value could show in a line: as is, JSON-escaped, repr-escaped, and its random core."""
    core = re.search(r"[0-9a-f]{24}", value)
    assert core is not None
    return [value, json.dumps(value)[1:-1], repr(value)[1:-1], core.group()]


def _assert_clear_of(text: str, value: str) -> None:
    for form in _forms(value):
        assert form not in text, f"secret form {form[:4]}... reached the output"


@pytest.fixture
def json_log() -> tuple[logging.Logger, io.StringIO]:
    """A logger wired like setup_logging wires the root: the JSON formatter with the masking filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger(f"qe-log-mask-{secrets.token_hex(4)}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    install_masking_filter(logger)
    return logger, stream


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class _Carrier:
    def __init__(self, value: str) -> None:
        self.value = value

    def __str__(self) -> str:
        return f"carrier({self.value})"


@pytest.mark.parametrize("kind", KINDS)
def test_secret_in_nested_extras_args_and_keys_is_masked(json_log, kind: str) -> None:
    logger, stream = json_log
    value = _secret(kind)
    register_secret(value)
    nested = {
        "order": {"auth": {"headers": [("X-MBX-APIKEY", value)], "depth": [[[[{"deep": value}]]]]}},
        "as_bytes": value.encode(),
        "as_object": _Carrier(value),
        value: "secret as a key",
        "body": json.dumps({"api_key": value}),  # already serialised by the caller
    }
    logger.info("sending %s", value, extra={"request": nested, "tuple": (1, value), "detail": f"key={value}"})
    text = stream.getvalue()
    _assert_clear_of(text, value)
    (line,) = _lines(stream)
    assert line["msg"] == f"sending {MASK}"
    assert line["request"]["order"]["auth"]["headers"] == [["X-MBX-APIKEY", MASK]]
    assert line["tuple"] == [1, MASK] and line["detail"] == f"key={MASK}"
    assert line["request"][MASK] == "secret as a key"


@pytest.mark.parametrize("kind", KINDS)
def test_secret_in_an_exception_is_masked_and_the_traceback_kept(json_log, kind: str) -> None:
    logger, stream = json_log
    value = _secret(kind)
    register_secret(value)

    def connect() -> None:
        try:
            raise ConnectionError(f"venue refused key {value}")
        except ConnectionError as exc:
            raise RuntimeError(f"login failed with {value!r}") from exc

    try:
        connect()
    except RuntimeError:
        logger.exception("order path failed", extra={"ctx": {"key": value}})
    logger.error("no exception here", exc_info=False)
    text = stream.getvalue()
    _assert_clear_of(text, value)
    first = _lines(stream)[0]
    # log.exception keeps its traceback (masked), with both exceptions of the chain and the frame names.
    assert "Traceback (most recent call last)" in first["exc"]
    assert "ConnectionError: venue refused key ***" in first["exc"] and "RuntimeError" in first["exc"]
    assert "in connect" in first["exc"]


def test_the_filter_keeps_tracebacks_for_plain_formatters_too() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"qe-log-plain-{secrets.token_hex(4)}")
    logger.propagate = False
    logger.addHandler(handler)
    install_masking_filter(logger)
    value = _secret("quote")
    register_secret(value)
    try:
        raise ValueError(value)
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    _assert_clear_of(text, value)
    assert "Traceback" in text and f"ValueError: {MASK}" in text


def test_mask_value_leaves_the_callers_objects_alone() -> None:
    value = _secret("plain")
    register_secret(value)
    original = {"k": [value, {"n": 1.5, "flag": True, "none": None}]}
    masked = mask_value(original)
    assert original == {"k": [value, {"n": 1.5, "flag": True, "none": None}]}
    assert masked == {"k": [MASK, {"n": 1.5, "flag": True, "none": None}]}


_UNCAUGHT_SCRIPT = textwrap.dedent(
    """
    import os, threading, warnings
    from quantumedge.shared.logs import register_secret, setup_logging

    setup_logging("INFO", service="test")
    secret = os.environ["QE_TEST_SECRET"]
    register_secret(secret)

    def worker():
        raise RuntimeError("thread saw " + secret)

    t = threading.Thread(target=worker, name="qe-worker")
    t.start()
    t.join()
    warnings.warn("warning with " + secret)

    class Leaky:
        def __del__(self):
            raise ValueError("finalizer saw " + secret)

    Leaky()
    raise KeyError("main thread saw " + secret)
    """
)


@pytest.mark.parametrize("kind", ("plain", "both"))
def test_uncaught_exceptions_of_threads_and_main_never_print_the_secret(kind: str) -> None:
    value = _secret(kind)
    env = {**os.environ, "QE_TEST_SECRET": value, "PYTHONPATH": str(REPO / "services")}
    done = subprocess.run(
        [sys.executable, "-c", _UNCAUGHT_SCRIPT], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    _assert_clear_of(output, value)
    assert done.returncode == 1
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # nothing but JSON lines on stderr
    uncaught = [line for line in lines if line["logger"] == "quantumedge.uncaught"]
    messages = [line["msg"] for line in uncaught]
    assert "uncaught exception in thread qe-worker" in messages
    assert "uncaught exception; the process exits" in messages
    assert any(m.startswith("Exception ignored in") and "Leaky.__del__" in m for m in messages)
    by_msg = {line["msg"]: line for line in uncaught}
    assert "RuntimeError: thread saw ***" in by_msg["uncaught exception in thread qe-worker"]["exc"]
    assert "KeyError" in by_msg["uncaught exception; the process exits"]["exc"]
    assert any(line["logger"] == "py.warnings" and MASK in line["msg"] for line in lines)


def test_span_attributes_events_and_status_are_masked_before_export() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import Status, StatusCode

    from quantumedge.shared.telemetry import MaskingSpanExporter

    value = _secret("both")
    register_secret(value)
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(MaskingSpanExporter(memory)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(f"call {value}", record_exception=False) as span:
        span.set_attribute("http.url", f"https://venue/?signature={value}")
        span.set_attribute("keys", [value, "other"])
        span.add_event("retry", {"reason": value, "attempt": 2})
        span.record_exception(PermissionError(f"key {value} refused"))
        span.set_status(Status(StatusCode.ERROR, f"refused {value}"))
    (exported,) = memory.get_finished_spans()
    _assert_clear_of(exported.to_json(), value)
    assert list(exported.attributes["keys"]) == [MASK, "other"]
    exception = next(e for e in exported.events if e.name == "exception")
    assert exception.attributes["exception.message"] == f"key {MASK} refused"
    assert MASK in exception.attributes["exception.stacktrace"]
    assert exported.status.description == f"refused {MASK}" and exported.attributes["http.url"].endswith(MASK)
    provider.shutdown()
