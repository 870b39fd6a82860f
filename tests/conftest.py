"""Root fixtures: a real Kafka broker and a real Vault-API server, started only when a test asks for one.

Each comes from, in order:
  1. an existing server named by env vars: QE_TEST_KAFKA_BOOTSTRAP; QE_TEST_VAULT_ADDR + QE_TEST_VAULT_TOKEN
  2. testcontainers, when a Docker engine answers, on images built locally (tests/harness/images.py);
     QE_TEST_DOCKER=0 skips this, QE_TEST_DOCKER=1 requires it
  3. a local process: Kafka 3.9.1 (KRaft) from the release jars, or OpenBao's dev server

One broker / server per session, shared by all tests: tests isolate themselves with unique topic and group
names (`kafka_topic_factory`, `unique_name`). Tests that use these fixtures are marked `integration`.
"""

from __future__ import annotations

import contextlib
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from kafka import KafkaAdminClient

from tests.harness import (
    HarnessError,
    LocalKafka,
    LocalVault,
    VaultEndpoint,
    docker_available,
    docker_required,
    kafka_container,
    kafka_is_ready,
    vault_container,
    vault_is_ready,
    vault_token_works,
)
from tests.support.captures import binance_capture  # noqa: F401 - the one fixture for the real captures
from tools.harness.kafka_secure import SaslSslKafka

T = TypeVar("T")
# Where each real component of this session came from (tests/integration/test_harness_origin.py reports it).
ORIGINS: dict[str, str] = {}

REAL_COMPONENT_FIXTURES = frozenset({"kafka_bootstrap", "kafka_topic_factory", "kafka_sasl", "vault"})
# SCRAM users of the secured broker: one per service (the chart's and `quantumedge topics`' default principal
# names) and one that no ACL names.
KAFKA_SASL_USERS = (
    *(f"quantumedge-{s}" for s in ("ingest", "inference", "risk", "execution", "notify")),
    "quantumedge-outsider",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test that touches the real broker or Vault is an integration test, wherever its file lives.
    for item in items:
        if REAL_COMPONENT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """host:port of a real Kafka broker for this test session."""
    existing = os.environ.get("QE_TEST_KAFKA_BOOTSTRAP", "").strip()
    if existing:
        ok, reason = kafka_is_ready(existing, timeout_s=10.0)
        if not ok:
            raise HarnessError(f"Kafka: QE_TEST_KAFKA_BOOTSTRAP={existing} does not answer: {reason}")
        ORIGINS["kafka"] = "QE_TEST_KAFKA_BOOTSTRAP"
        yield existing
        return
    with contextlib.ExitStack() as stack:
        in_container = _from_docker(stack, kafka_container)
        if in_container:
            ORIGINS["kafka"] = f"container {in_container.container_id[:12]}"
            yield in_container.bootstrap
            return
        local = stack.enter_context(LocalKafka())
        ORIGINS["kafka"] = f"local process {local.pid}"
        yield local.bootstrap


@pytest.fixture(scope="module")
def kafka_sasl() -> Iterator[SaslSslKafka]:
    """A second real broker, secured as in production: SASL_SSL (SCRAM-SHA-512) only, a CA made for it, ACLs
    enforced (StandardAuthorizer, nothing allowed without an ACL), super user `admin`, and the SCRAM users in
    KAFKA_SASL_USERS. Tests isolate themselves with a topic prefix and apply that prefix's ACLs. One per test
    module (it starts in seconds), so no idle second JVM sits beside the session broker for the whole run."""
    with SaslSslKafka(users=KAFKA_SASL_USERS) as broker:
        yield broker


@pytest.fixture(scope="session")
def vault() -> Iterator[VaultEndpoint]:
    """A real Vault-API server for this test session: `.addr` and a root `.token` (never printed)."""
    addr = os.environ.get("QE_TEST_VAULT_ADDR", "").strip().rstrip("/")
    token = os.environ.get("QE_TEST_VAULT_TOKEN", "").strip()
    if addr or token:
        if not (addr and token):
            raise HarnessError("Vault: set both QE_TEST_VAULT_ADDR and QE_TEST_VAULT_TOKEN, or neither")
        ok, reason = vault_is_ready(addr)
        if not ok:
            raise HarnessError(f"Vault: QE_TEST_VAULT_ADDR={addr} is not ready: {reason}")
        ok, reason = vault_token_works(addr, token)
        if not ok:
            raise HarnessError(f"Vault: QE_TEST_VAULT_TOKEN is not a valid token on {addr}: {reason}")
        yield VaultEndpoint(addr=addr, token=token)
        return
    with contextlib.ExitStack() as stack:
        endpoint = _from_docker(stack, vault_container)
        if endpoint:
            ORIGINS["vault"] = "container"
            yield endpoint
            return
        local = stack.enter_context(LocalVault())
        ORIGINS["vault"] = f"local process {local.pid}"
        yield local.endpoint


def _from_docker(
    stack: contextlib.ExitStack, container: Callable[[], contextlib.AbstractContextManager[T]]
) -> T | None:
    """The container's value when Docker answers and the container starts; None means "use a local process".

    A Docker engine that cannot build or start the image (no base, no permission) is not a reason to fail the
    run while a local process can do the same job: say so as a warning and fall back. QE_TEST_DOCKER=1 makes
    the containers mandatory (a failure fails the run), to prove the testcontainers path itself.
    """
    if not docker_available():
        if docker_required():
            raise HarnessError("QE_TEST_DOCKER=1 but no Docker engine answers (make docker-up, or set DOCKER_HOST)")
        return None
    try:
        return stack.enter_context(container())
    except HarnessError as exc:
        if docker_required():
            raise
        warnings.warn(f"{exc}; falling back to a local process", stacklevel=2)
        return None


@pytest.fixture(autouse=True)
def _own_metrics_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test's services serve /metrics on free ports of their own: the documented defaults (9101-9105)
    would collide between tests and with whatever else runs on this machine. Spawned processes inherit them."""
    from tests.support.procs import free_port

    for name in ("ingest", "inference", "risk", "execution", "notify"):
        monkeypatch.setenv(f"QE_PORTS__{name.upper()}_METRICS", str(free_port()))


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Callable[[str], str]:
    """unique_name("group") -> "group-test_foo-1a2b3c4d": names no other test (or earlier run) uses."""
    test = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60].strip("-")

    def make(prefix: str) -> str:
        return f"{prefix}-{test}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture
def kafka_topic_factory(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics on the shared broker; they are deleted after the test.

    make_topic("trades", partitions=3, configs={"cleanup.policy": "compact"}) -> "trades-test_x-1a2b3c4d"
    """
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id="qe-test-topics", request_timeout_ms=30000)
    created: list[str] = []

    def make(prefix: str = "topic", *, partitions: int = 3, configs: dict[str, str] | None = None) -> str:
        name = unique_name(prefix)
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
            timeout_ms=30000,
            wait_for_metadata=True,
        )
        created.append(name)
        return name

    try:
        yield make
    finally:
        if created:
            with contextlib.suppress(Exception):
                admin.delete_topics(created, timeout_ms=30000, raise_errors=False)
        admin.close()
