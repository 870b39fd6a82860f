"""The LLM risk moderator's adapter: one chat-completions call through the `openai` client, inside a time budget.

The policy (what to send, how a verdict applies, the fail policy) is quantumedge.risk.moderator; this module only
turns a context into an Outcome and records telemetry: a span per call, latency, tokens, verdicts and failures.
The call runs on a worker thread and the caller waits at most the budget (the client's own timeout is the same
budget and max_retries is 0), so a hung endpoint never holds the consumer longer than that.
"""

from __future__ import annotations

import json
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from quantumedge.risk.moderator import SYSTEM_PROMPT, Outcome, Verdict, fill_summary
from quantumedge.risk.moderator_settings import ModeratorSettings
from quantumedge.shared.logs import get_logger, register_secret
from quantumedge.shared.telemetry import meter, tracer
from quantumedge.v1 import execution_pb2

log = get_logger(__name__)


class ModeratorTelemetry:
    """The moderator's instruments: on risk's meter (so on its Prometheus endpoint) unless a test passes its own."""

    def __init__(self, meter_: metrics.Meter | None = None, tracer_: trace.Tracer | None = None) -> None:
        m = meter_ or meter("risk")
        self.tracer = tracer_ or tracer("risk")
        self.latency = m.create_histogram("qe.risk.moderator.latency", unit="ms", description="moderator call latency")
        self.tokens = m.create_counter("qe.risk.moderator.tokens", description="tokens the moderator used, by kind")
        self.outcomes = m.create_counter(
            "qe.risk.moderator.outcomes", description="moderator calls by outcome: allow, deny, reduce or the failure"
        )
        self.failures = m.create_counter(
            "qe.risk.moderator.failures", description="calls without a verdict: timeout, error, malformed, 429"
        )


class ModeratorClient:
    """Calls an OpenAI-compatible /v1/chat/completions endpoint and validates its verdict."""

    def __init__(self, settings: ModeratorSettings, api_key: str, telemetry: ModeratorTelemetry | None = None) -> None:
        register_secret(api_key)  # never in a log line
        self.settings = settings
        self.telemetry = telemetry or ModeratorTelemetry()
        self._budget_s = settings.budget_ms / 1000.0
        import openai  # here: risk without a moderator (the default) never loads the client (cold start)

        self._client = openai.OpenAI(api_key=api_key, base_url=settings.base_url, timeout=self._budget_s, max_retries=0)
        # Two workers: a call abandoned at the deadline may still be running while the next one starts.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="risk-moderator")
        self.fills: deque[dict[str, Any]] = deque(maxlen=max(1, settings.recent_fills))

    def note_report(self, report: execution_pb2.ExecutionReport) -> None:
        summary = fill_summary(report)
        if summary is not None and self.settings.recent_fills:
            self.fills.append(summary)

    def recent_fills(self) -> list[dict[str, Any]]:
        return list(self.fills)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    def review(self, context: dict[str, Any]) -> Outcome:
        """One verdict or the reason there is none, within the budget. Never raises."""
        tm = self.telemetry
        with tm.tracer.start_as_current_span("risk.moderator.review") as span:
            span.set_attribute("qe.symbol", str(context.get("symbol", "")))
            span.set_attribute("qe.moderator.model", self.settings.model)
            t0 = time.perf_counter()
            future = self._pool.submit(self._call, context)
            try:
                outcome = future.result(timeout=self._budget_s)
            except FutureTimeoutError:
                future.cancel()
                outcome = Outcome("timeout", detail=f"no answer within the {self.settings.budget_ms:g} ms budget")
            latency = (time.perf_counter() - t0) * 1000.0
            outcome = Outcome(
                outcome.status,
                outcome.verdict,
                outcome.detail,
                latency,
                outcome.prompt_tokens,
                outcome.completion_tokens,
            )
            label = outcome.verdict.verdict if outcome.verdict else outcome.status
            span.set_attribute("qe.moderator.outcome", label)
            span.set_attribute("qe.moderator.prompt_tokens", outcome.prompt_tokens)
            span.set_attribute("qe.moderator.completion_tokens", outcome.completion_tokens)
            tm.latency.record(latency, {"outcome": label})
            tm.outcomes.add(1, {"outcome": label})
            if outcome.verdict is None:
                tm.failures.add(1, {"kind": outcome.status})
                span.set_status(Status(StatusCode.ERROR, outcome.detail[:200]))
                log.warning("moderator unavailable", extra={"kind": outcome.status, "detail": outcome.detail})
            tm.tokens.add(outcome.prompt_tokens, {"kind": "prompt"})
            tm.tokens.add(outcome.completion_tokens, {"kind": "completion"})
            return outcome

    def _call(self, context: dict[str, Any]) -> Outcome:
        import openai  # loaded by __init__ already: only binds the name for the except clauses

        try:
            response = self._client.chat.completions.create(
                model=self.settings.model,
                messages=[
                    {"role": "system", "content": SYSTEM_PROMPT},
                    {"role": "user", "content": json.dumps(context, separators=(",", ":"))},
                ],
                temperature=0,
                max_tokens=self.settings.max_tokens,
                response_format={"type": "json_object"},
            )
        except openai.APITimeoutError:
            return Outcome("timeout", detail=f"the endpoint did not answer within {self.settings.budget_ms:g} ms")
        except openai.RateLimitError as exc:
            retry_after = exc.response.headers.get("retry-after", "")
            return Outcome("rate_limited", detail=f"HTTP 429 (retry-after {retry_after or '?'} s): {_short(exc)}")
        except openai.APIStatusError as exc:
            return Outcome("error", detail=f"HTTP {exc.status_code}: {_short(exc)}")
        except openai.APIConnectionError as exc:
            return Outcome("error", detail=f"connection failed: {_short(exc)}")
        except Exception as exc:  # an unparseable body and the like: still an outcome, never a crashed consumer
            return Outcome("malformed", detail=f"{type(exc).__name__}: {_short(exc)}")
        usage = response.usage
        tokens = (usage.prompt_tokens, usage.completion_tokens) if usage is not None else (0, 0)
        content = response.choices[0].message.content if response.choices else None
        if not content:
            return Outcome("malformed", detail="no message content in the answer", prompt_tokens=tokens[0])
        try:
            verdict = Verdict.model_validate_json(content)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "answer"
            detail = f"verdict invalid at {where}: {first.get('msg', '')}"[:300]
            return Outcome("malformed", None, detail, 0.0, *tokens)
        return Outcome("verdict", verdict, "", 0.0, *tokens)


def _short(exc: Exception) -> str:
    return str(exc).replace("\n", " ")[:200]


def moderator_for(settings: Any) -> ModeratorClient | None:
    """The moderator client risk runs with, or None when it is disabled. Its API key comes from Vault only; a
    missing key stops risk with the path and the setting to change (SecretsRequiredError / ConfigError)."""
    mod = settings.risk.moderator
    if not mod.enabled:
        return None
    from quantumedge.secrets.require import require_secrets

    secrets = require_secrets(settings, "risk", [mod.api_key_path])
    data = secrets[mod.api_key_path]
    secrets.close()
    if "api_key" not in data:
        from quantumedge.shared.config import ConfigError

        raise ConfigError(f"Vault secret {mod.api_key_path} has no api_key (risk.moderator.api_key_path)")
    return ModeratorClient(mod, data["api_key"])
