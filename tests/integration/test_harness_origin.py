"""Which path gave this session its Kafka and Vault: with a Docker engine, testcontainers on the locally built
images (never a registry); without one, local processes. `make test` passes either way; this test says which
way it went, and fails if the machine had an engine but the session silently used processes while
QE_TEST_DOCKER=1 demanded containers."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ORIGINS
from tests.harness import VaultEndpoint, docker_available, docker_required

pytestmark = pytest.mark.integration


def _images(*filters: str) -> list[str]:
    argv = ["docker", "ps", *(a for f in filters for a in ("--filter", f)), "--format", "{{.Image}}"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def test_kafka_and_vault_come_from_the_path_the_machine_has(kafka_bootstrap: str, vault: VaultEndpoint) -> None:
    print(f"\nharness: Kafka from {ORIGINS.get('kafka')}, Vault from {ORIGINS.get('vault', 'env')}")
    if os.environ.get("QE_TEST_KAFKA_BOOTSTRAP") or os.environ.get("QE_TEST_VAULT_ADDR"):
        pytest.skip("servers given by QE_TEST_KAFKA_BOOTSTRAP / QE_TEST_VAULT_ADDR")
    if docker_available():
        if not docker_required() and not ORIGINS["kafka"].startswith("container"):
            pytest.skip("Docker answers but its containers did not start (warned above); QE_TEST_DOCKER=1 demands them")
        assert ORIGINS["kafka"].startswith("container") and ORIGINS["vault"] == "container"
        (kafka_image,) = _images(f"publish={kafka_bootstrap.rsplit(':', 1)[-1]}")
        assert kafka_image.startswith("quantumedge-test-kafka:")
        # OpenBao runs in the host's network namespace (listening on 127.0.0.1), so no port is published.
        assert any(i.startswith("quantumedge-test-openbao:") for i in _images("network=host"))
    else:
        assert ORIGINS["kafka"].startswith("local process") and ORIGINS["vault"].startswith("local process")
