"""No secret ever lands in a log, a file or a Kafka topic.

The four services run as separate `quantumedge serve` processes on a real Kafka broker, at DEBUG, each
logging in to a real Vault-API server (OpenBao dev server or Vault) with its own AppRole. Execution trades
on the local Binance peer (testnet mode) with the exchange key and secret it reads from Vault; the operator
token's hash also comes from Vault. The test drives signed orders, a rate limit, a venue rejection, a
request the venue refuses for a bad API key, and changing gRPC calls with a wrong, a malformed and no
bearer token, plus authorised ones. Then everything stops and every byte the run produced is searched
for each secret in raw, hex and base64 form (and for anything shaped like a Vault token):

- each process's stdout and stderr;
- every file under the data and temp directories the services were given (Parquet recordings decoded
  too, since zstd would hide a raw value), and every file in the repository written during the run;
- every record (key, value, headers) on every Kafka topic with the test's prefix, read from the beginning.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import hvac
import pytest
from kafka import KafkaConsumer, TopicPartition

from quantumedge.execution.domain import ids
from quantumedge.shared import topics
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.config import KafkaSettings
from quantumedge.v1 import (
    common_pb2,
    execution_pb2,
    execution_pb2_grpc,
    inference_pb2,
    inference_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
)
from tests.harness import VaultEndpoint
from tests.integration.secrets.seeding import SeededVault, seed_known_secrets
from tests.peers.binance_trading import BinanceTradingPeer
from tests.support.execution_builders import decision
from tests.support.procs import ROOT, free_port, kafka_env, spawn, stop, wait_serving
from tests.support.signing import SESSION_KEY, signed_for_serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVICES = ("execution", "risk", "inference", "ingest")  # downstream first
SYMBOL = "BTCUSDT"
PRICE = 60_000.0  # the synthetic market's BTCUSDT start price; the peer's book sits there too
# A Vault / OpenBao token (service, batch, recovery; legacy and current prefixes) wherever it shows.
VAULT_TOKEN = re.compile(rb"(?<![A-Za-z0-9_.-])(?:hv[sbr]|[sbr])\.[A-Za-z0-9_-]{20,}")
# Written by the test runner itself, not by the services under test.
REPO_SKIP = {".git", ".venv", ".pytest_cache", ".ruff_cache", ".mypy_cache"}

Needles = dict[str, bytes]


# ---- what to look for -----------------------------------------------------------------------------------------


def encodings(name: str, value: str) -> Needles:
    """`value` raw, as hex (both cases) and as base64 (standard and URL-safe, at each of the three byte
    alignments it can have inside a longer encoded blob: only the characters it alone determines)."""
    raw = value.encode()
    out = {f"{name} (raw)": raw, f"{name} (hex)": raw.hex().encode(), f"{name} (HEX)": raw.hex().upper().encode()}
    for shift in range(3):
        for alphabet, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            encoded = encode(b"\0" * shift + raw)
            whole_groups = (shift + len(raw)) // 3 * 4
            out[f"{name} ({alphabet}@{shift})"] = encoded[4 if shift else 0 : whole_groups]
    return out


def needles_for(named: dict[str, str]) -> Needles:
    out: Needles = {}
    for name, value in named.items():
        out |= encodings(name, value)
    return out


def find_leaks(where: str, blob: bytes, needles: Needles, vault_tokens: bool = True) -> list[str]:
    """Every needle (and Vault-token lookalike) in `blob`, described with context but without the value."""
    found = []
    for label, needle in needles.items():
        at = blob.find(needle)
        if at >= 0:
            context = blob[max(0, at - 120) : at + len(needle) + 120].replace(needle, b"<" + label.encode() + b">")
            found.append(f"{where}: {label} at byte {at}: {context!r}")
    for match in VAULT_TOKEN.finditer(blob) if vault_tokens else ():
        context = blob[max(0, match.start() - 120) : match.start()]
        found.append(f"{where}: a Vault token ({match.group()[:4]!r}...) at byte {match.start()} after {context!r}")
    return found


# ---- where to look --------------------------------------------------------------------------------------------


def file_artifacts(roots: list[Path], since: float | None = None, skip: frozenset[str] = frozenset()) -> dict:
    """Path -> bytes of every file under `roots` (modified at or after `since` when given); Parquet files
    also decoded, so a value inside a compressed column is found too."""
    out: dict[str, bytes] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in skip]
            for filename in filenames:
                path = Path(dirpath, filename)
                try:
                    if since is not None and path.stat().st_mtime < since:
                        continue
                    data = path.read_bytes()
                except OSError:  # vanished (another writer's temp file) or unreadable
                    continue
                out[str(path)] = data
                if ".parquet" in filename:
                    out[f"{path} (decoded)"] = parquet_text(path)
    return out


def parquet_text(path: Path) -> bytes:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # a torn file is still searched raw; say why it could not be decoded
        return f"<undecodable: {exc}>".encode()
    parts = []
    for row in table.to_pylist():
        for value in row.values():
            parts.append(value if isinstance(value, bytes) else str(value).encode())
    return b"\n".join(parts)


def kafka_artifacts(bootstrap: str, prefix: str, timeout_s: float = 60.0) -> dict[str, list[bytes]]:
    """Topic -> every record (key, value, header names and values) on every topic named with `prefix`."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        names = sorted(t for t in consumer.topics() if t.startswith(prefix))
        tps = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        out: dict[str, list[bytes]] = {t: [] for t in names}
        if not tps:
            return out
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < end[tp] for tp in tps):
            assert time.monotonic() < deadline, "timed out reading the test's topics to their end"
            for records in consumer.poll(timeout_ms=500, max_records=10_000).values():
                for r in records:
                    headers = b"".join(k.encode() + b"=" + (v or b"") + b";" for k, v in r.headers or ())
                    out[r.topic].append(b"\x00".join((r.key or b"", r.value or b"", headers)))
        return out
    finally:
        consumer.close()


# ---- driving it -----------------------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def refused(call: Callable[..., object], request: object, metadata: tuple = ()) -> grpc.StatusCode:
    try:
        call(request, metadata=metadata, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


@pytest.fixture
def seeded(vault: VaultEndpoint) -> Iterator[SeededVault]:
    seeded = seed_known_secrets(vault.addr, vault.token)
    try:
        yield seeded
    finally:
        seeded.cleanup()


def test_no_secret_reaches_logs_files_or_kafka(
    kafka_bootstrap: str, vault: VaultEndpoint, seeded: SeededVault, tmp_path: Path
) -> None:
    started_at = time.time() - 1  # mtime granularity
    prefix = f"e2e-secrets-{uuid.uuid4().hex[:8]}."
    logs, data_dir, tmp_dir = tmp_path / "logs", tmp_path / "var", tmp_path / "tmp"
    for d in (logs, data_dir, tmp_dir):
        d.mkdir()
    ports = {name: free_port() for name in SERVICES}
    api_key, api_secret = seeded.exchange["api_key"], seeded.exchange["api_secret"]
    wrong_token = "op-" + secrets.token_urlsafe(24)  # what a mistyping operator presents: as sensitive
    basic_credential = secrets.token_hex(20)

    peer = BinanceTradingPeer(symbols=(SYMBOL,), api_key=api_key, api_secret=api_secret).start()
    bus = KafkaBus(KafkaSettings(bootstrap=kafka_bootstrap, allow_plaintext=True, topic_prefix=prefix))
    procs: dict = {}
    codes: dict[str, int | None] = {}
    channels = {name: grpc.insecure_channel(f"127.0.0.1:{port}") for name, port in ports.items()}
    execution = execution_pb2_grpc.ExecutionServiceStub(channels["execution"])
    risk = risk_pb2_grpc.RiskServiceStub(channels["risk"])
    inference = inference_pb2_grpc.InferenceServiceStub(channels["inference"])
    good = (("authorization", f"Bearer {seeded.operator_token}"),)

    def order(cid: str) -> execution_pb2.Order | None:
        orders = execution.ListOrders(execution_pb2.ListOrdersRequest(symbol=SYMBOL), timeout=10).orders
        return next((o for o in orders if o.client_order_id == cid), None)

    def trade(intent_id: str, qty: float) -> str:
        bus.publish(topics.DECISIONS, SYMBOL, signed_for_serve(decision(intent_id, qty=qty, reference=PRICE)))
        bus.flush()
        return ids.order_id(ids.ENTRY, intent_id)

    peer.set_book(
        SYMBOL,
        bids=[(f"{PRICE - 10 * i:.2f}", "5") for i in range(1, 6)],
        asks=[(f"{PRICE + 10 * i:.2f}", "5") for i in range(5)],
    )
    common = {
        **kafka_env(kafka_bootstrap, prefix),
        "QE_LOG_LEVEL": "DEBUG",
        "QE_SYMBOLS": f'["{SYMBOL}"]',
        "QE_DATA_DIR": str(data_dir),
        "TMPDIR": str(tmp_dir),
        # Spans and metrics on stdout: one more place a secret could surface.
        "QE_TELEMETRY__TRACES": "console",
        "QE_TELEMETRY__METRICS": "console",
        "QE_INGEST__SOURCE": "synthetic",
        "QE_INGEST__SYNTHETIC_STEPS": "0",
        "QE_INGEST__SYNTHETIC_SPEED": "2",
        # Execution's own caps above the oversized order below, so that the venue is the one refusing it.
        "QE_EXECUTION__MAX_ORDER_NOTIONAL": "1000000",
        "QE_EXECUTION__MAX_POSITION_NOTIONAL": "1000000",
        "QE_INGEST__RECORD": "true",
        "QE_INGEST__RECORD_FLUSH_S": "1",
        "QE_INGEST__RECORD_BATCH_EVENTS": "50",
        "QE_VENUE": "testnet",
        "QE_EXECUTION__REST_URL": peer.rest_url,
        "QE_EXECUTION__WS_API_URL": peer.ws_url,
        "QE_EXECUTION__READ_TIMEOUT_S": "2",
        # Whatever the caller's shell holds: keys and the operator hash come from Vault, nothing else.
        "QE_VAULT__OPERATOR_TOKEN_SHA256": "",
        "QE_VAULT__ALLOW_ENV_CREDENTIALS": "false",
        "QE_VAULT_TOKEN": "",
        "QE_EXCHANGE_API_KEY": "",
        "QE_EXCHANGE_API_SECRET": "",
        "QE_OPERATOR_TOKEN": "",
        "QE_CONFIG_FILE": "",
        **{f"QE_PORTS__{name.upper()}": str(port) for name, port in ports.items()},
    }
    try:
        envs = {name: {**common, **seeded.service_env(name)} for name in SERVICES}  # own AppRole secret-id each
        bus.ensure_topics()
        for name in SERVICES:
            procs[name] = spawn(["serve", name], envs[name], logs / f"{name}.log")
            wait_serving(ports[name], timeout_s=90, proc=procs[name])

        # Orders signed with the key from Vault: one plain, one after a 429 from the venue.
        first = trade(f"ok-{uuid.uuid4().hex[:6]}", 0.001)
        wait_until(lambda: peer.accepted.get(first) == 1, 30, "the first order accepted by the venue")
        peer.rate_limit_next(1, retry_after_s=1)
        second = trade(f"ok-{uuid.uuid4().hex[:6]}", 0.002)
        wait_until(lambda: peer.accepted.get(second) == 1, 30, "the order sent again after the rate limit")

        # The venue rejects an order (-2010 insufficient balance: 3 BTC at 60k against 100k USDT).
        big = trade(f"big-{uuid.uuid4().hex[:6]}", 3.0)
        wait_until(lambda: peer.order_requests.get(big) == 1, 30, "the oversized order at the venue")
        wait_until(lambda: (o := order(big)) and o.status == execution_pb2.ORDER_STATUS_REJECTED, 30, "its rejection")

        # The venue stops recognising the API key for a while: -2015 on a signed order.
        before_401 = peer.statuses[401]
        peer.api_key = "not-" + api_key[4:]  # pragma: allowlist secret
        try:
            bad_key = trade(f"badkey-{uuid.uuid4().hex[:6]}", 0.001)
            wait_until(lambda: peer.statuses[401] > before_401, 30, "a request refused for its API key")
            wait_until(
                lambda: (o := order(bad_key)) and o.status == execution_pb2.ORDER_STATUS_REJECTED,
                30,
                "the order refused for its API key recorded as rejected",
            )
        finally:
            peer.api_key = api_key

        # Changing calls with a wrong, a malformed and no bearer token: refused and audited.
        wrong = (("authorization", f"Bearer {wrong_token}"),)
        submit = execution_pb2.SubmitOrderRequest(
            symbol=SYMBOL, side=common_pb2.SIDE_BUY, order_type=risk_pb2.ORDER_TYPE_MARKET, quantity=0.001
        )
        unauthenticated = grpc.StatusCode.UNAUTHENTICATED
        assert refused(execution.SubmitOrder, submit, wrong) == unauthenticated
        assert refused(execution.SubmitOrder, submit) == unauthenticated
        assert refused(execution.CancelAll, execution_pb2.CancelAllRequest(reason="x"), wrong) == unauthenticated
        assert refused(risk.Halt, risk_pb2.HaltRequest(reason="x"), wrong) == unauthenticated
        malformed = (("authorization", f"Basic {basic_credential}"),)
        assert refused(risk.UpdateLimits, risk_pb2.UpdateLimitsRequest(), malformed) == unauthenticated
        assert refused(inference.ReloadModels, inference_pb2.ReloadModelsRequest()) == unauthenticated
        assert refused(inference.ReloadModels, inference_pb2.ReloadModelsRequest(), wrong) == unauthenticated

        # Authorised changing calls (hash read from Vault): a manual order reviewed by risk, a halt, a resume.
        manual = execution.SubmitOrder(
            execution_pb2.SubmitOrderRequest(
                symbol=SYMBOL,
                side=common_pb2.SIDE_BUY,
                order_type=risk_pb2.ORDER_TYPE_MARKET,
                quantity=0.001,
                request_id=uuid.uuid4().hex,
            ),
            metadata=good,
            timeout=20,
        )
        assert manual.decision.decision_id, "risk did not review the manual order"
        assert risk.Halt(risk_pb2.HaltRequest(reason="secret scan"), metadata=good, timeout=10).halted
        assert not risk.Resume(risk_pb2.ResumeRequest(reason="secret scan"), metadata=good, timeout=10).halted
        assert inference.ReloadModels(inference_pb2.ReloadModelsRequest(), metadata=good, timeout=30).models

        # The recorder has closed at least one batch of market events to disk.
        wait_until(lambda: any((data_dir / "recordings").rglob("*.parquet*")), 30, "a recording file")
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} died during the run (see {logs / f'{name}.log'})"
    finally:
        for channel in channels.values():
            channel.close()
        codes = {name: stop(p) for name, p in procs.items()}
        peer.stop()
        bus.close()
        for name in procs:  # shown when the test fails: the log lines, without the console spans
            text = (logs / f"{name}.log").read_text(errors="replace").splitlines()
            lines = [x for x in text if x.startswith('{"')]
            # A process that died before its logging was set up printed plain lines only: show those instead.
            print(f"--- {name} (exit {codes[name]}) ---", *(lines or text)[-15:], sep="\n")

    # ---- the run really exercised the secrets ----------------------------------------------------------------
    # The peer accepts only requests whose X-MBX-APIKEY header is the key it was built with (the one seeded in
    # Vault) and whose HMAC verifies with the seeded secret; anything else is answered -2015 / -1022.
    assert peer.accepted.get(first) == 1 and peer.accepted.get(second) == 1
    assert peer.statuses[400] >= 1 and peer.statuses[401] >= 1 and peer.statuses[429] >= 1
    outputs = {name: (logs / f"{name}.log").read_bytes() for name in SERVICES}
    for name, output in outputs.items():
        assert b'"level": "info"' in output, f"{name} logged nothing: {output[-2000:]!r}"
    assert outputs["execution"].count(b"changing call refused") >= 3
    assert outputs["risk"].count(b"changing call refused") >= 2
    assert outputs["inference"].count(b"changing call refused") >= 2

    # ---- and none of them surfaced anywhere -----------------------------------------------------------------
    named = {
        "exchange api_key": api_key,
        "exchange api_secret": api_secret,
        "operator token": seeded.operator_token,
        "wrong operator token": wrong_token,
        "basic credential": basic_credential,
        "vault root token": vault.token,
        "risk signing key": SESSION_KEY.seed_b64(),
    }
    for value in seeded.values:  # the AppRole secret-ids handed to each service, besides the above
        if value not in named.values():
            named[f"approle secret-id #{len(named)}"] = value
    needles = needles_for(named)
    # The search itself finds each form it claims to (a vacuous search would pass any run), and the token
    # pattern matches a token this very server issues.
    for name, value in named.items():
        raw = value.encode()
        embedded = [b"<" + raw + b">", b"0x" + raw.hex().encode(), raw.hex().upper().encode()]
        for shift in range(3):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                embedded.append(encode(b"J" * shift + raw + b"!?>"))
        for blob in embedded:
            assert find_leaks("self-test", blob, needles, vault_tokens=False), f"{name} not found in {blob!r}"
    root = hvac.Client(url=vault.addr, token=vault.token, timeout=10)
    sample = root.auth.token.create(ttl="60s", policies=["default"])["auth"]["client_token"]
    root.auth.token.revoke(sample)
    assert VAULT_TOKEN.fullmatch(sample.encode()), "the Vault-token pattern misses this server's tokens"

    artifacts = {f"{name} stdout+stderr": output for name, output in outputs.items()}
    artifacts |= file_artifacts([data_dir, tmp_dir])
    # Other writers may touch the repository meanwhile: only the exact secrets are looked for there.
    repo_files = file_artifacts([ROOT], since=started_at, skip=frozenset(REPO_SKIP))
    records = kafka_artifacts(kafka_bootstrap, prefix)
    assert any(p.endswith(".parquet (decoded)") for p in artifacts), "no recording was written"
    for topic in (topics.REPORTS, topics.DECISIONS, topics.CONTROL, topics.TRADES):
        assert records.get(prefix + topic), f"nothing on {topic}"
    audits = b"".join(records[prefix + topics.AUDIT])
    assert audits.count(b"refused:") >= 7, "the refused changing calls were not audited on audit.v1"
    assert b"refused:" not in b"".join(records[prefix + topics.CONTROL]), "audits belong on audit.v1"

    leaks = [leak for where, blob in artifacts.items() for leak in find_leaks(where, blob, needles)]
    leaks += [leak for where, blob in repo_files.items() for leak in find_leaks(where, blob, needles, False)]
    for topic, values in records.items():
        for offset, blob in enumerate(values):
            leaks += find_leaks(f"kafka {topic} record #{offset}", blob, needles)
    print(
        f"searched {len(artifacts) + len(repo_files)} logs/files ({sum(map(len, artifacts.values()))} bytes) and "
        f"{sum(map(len, records.values()))} Kafka records on {len(records)} topics for {len(needles)} forms "
        f"of {len(named)} secrets; peer: {dict(peer.statuses)}, manual order approved: {manual.decision.approved}"
    )
    assert not leaks, "secret material found:\n" + "\n".join(leaks[:50])
    # Last: a crash on the way out would have been searched above like any other output.
    assert codes == dict.fromkeys(SERVICES, 0), f"a service did not drain cleanly: {codes}"
