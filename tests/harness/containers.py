"""testcontainers equivalents of LocalKafka / LocalVault, used when a Docker engine answers."""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
from collections.abc import Iterator

from tests.harness.process import HarnessError
from tests.harness.vault import VaultEndpoint

# Confluent Platform 7.9 ships Apache Kafka 3.9, the same broker version as the local one.
KAFKA_IMAGE = os.environ.get("QE_TEST_KAFKA_IMAGE", "confluentinc/cp-kafka:7.9.1")
VAULT_IMAGE = os.environ.get("QE_TEST_VAULT_IMAGE", "hashicorp/vault:1.18")


@functools.cache
def docker_available(timeout_s: float = 3.0) -> bool:
    """True when a Docker engine answers a ping (quick; never raises). QE_TEST_DOCKER=0 disables Docker."""
    if os.environ.get("QE_TEST_DOCKER", "").strip().lower() in {"0", "false", "no", "off"}:
        return False
    try:
        import docker
        from testcontainers.core.docker_client import get_docker_host
    except ImportError:
        return False
    try:
        host = get_docker_host()
        client = docker.DockerClient(base_url=host, timeout=timeout_s) if host else docker.from_env(timeout=timeout_s)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no socket, permission denied, bad DOCKER_HOST ... all mean "no Docker"
        return False


@contextlib.contextmanager
def kafka_container(*, start_timeout_s: int = 180) -> Iterator[str]:
    """A KRaft Kafka in a container; yields its bootstrap address."""
    from testcontainers.community.kafka import KafkaContainer

    container = None
    try:
        container = (
            KafkaContainer(KAFKA_IMAGE)  # connects to the Docker engine already here
            .with_kraft()
            .with_env("KAFKA_NUM_PARTITIONS", "3")
            .with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true")
            .with_env("KAFKA_MIN_INSYNC_REPLICAS", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
            .with_env("KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS", "1000")
        )
        container.start(timeout=start_timeout_s)
    except Exception as exc:
        _stop_quietly(container)
        raise HarnessError(f"Kafka: testcontainers could not start {KAFKA_IMAGE}: {exc}") from exc
    try:
        yield container.get_bootstrap_server()
    finally:
        _stop_quietly(container)


@contextlib.contextmanager
def vault_container() -> Iterator[VaultEndpoint]:
    """A Vault dev server in a container with a random root token; yields its address and token."""
    from testcontainers.community.vault import VaultContainer

    token = secrets.token_urlsafe(24)
    container = None
    try:
        container = VaultContainer(VAULT_IMAGE, root_token=token)  # connects to the Docker engine already here
        container.start()
    except Exception as exc:
        _stop_quietly(container)
        # Only the exception type: testcontainers errors can echo the container env, which holds the token.
        raise HarnessError(f"Vault: testcontainers could not start {VAULT_IMAGE}: {type(exc).__name__}") from None
    try:
        yield VaultEndpoint(addr=container.get_connection_url(), token=token)
    finally:
        _stop_quietly(container)


def _stop_quietly(container: object | None) -> None:
    if container is not None:
        with contextlib.suppress(Exception):
            container.stop()  # type: ignore[attr-defined]
