"""Real components for tests and local runs: a Kafka broker and a Vault-API server.

Each comes from, in order of preference: an existing server named by an env var, testcontainers when a
Docker engine answers, or a local process (Kafka from the release jars via Maven, OpenBao's dev server).
"""

from tests.harness.containers import docker_available, docker_required, kafka_container, vault_container
from tools.harness.kafka import LocalKafka, ensure_kafka_jars, kafka_is_ready
from tools.harness.process import HarnessError
from tools.harness.vault import LocalVault, VaultEndpoint, vault_is_ready, vault_token_works

__all__ = [
    "HarnessError",
    "LocalKafka",
    "LocalVault",
    "VaultEndpoint",
    "docker_available",
    "docker_required",
    "ensure_kafka_jars",
    "kafka_container",
    "kafka_is_ready",
    "vault_container",
    "vault_is_ready",
    "vault_token_works",
]
