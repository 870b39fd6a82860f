"""What SASL_SSL costs: the bus's publish/consume throughput and a client's connect+authenticate time on a
broker secured as in production (SCRAM-SHA-512 over TLS, ACLs enforced), next to the plaintext figures of
bus_bench. Starts its own secured broker (tools/harness/kafka_secure.py), or uses none when Java is missing."""

from __future__ import annotations

import statistics
import time
import uuid

from kafka import KafkaAdminClient

from bench.bus_bench import _roundtrip
from quantumedge.shared.bus.kafka import KafkaBus
from quantumedge.shared.bus.kafka_security import KafkaCredentials
from quantumedge.shared.config import KafkaSettings
from tools.harness.kafka_secure import ADMIN, SaslSslKafka


def _connect_ms(broker: SaslSslKafka, user: str, rounds: int = 5) -> float:
    """Median time from a new client to its first answered request: TCP, TLS handshake, SCRAM, metadata."""
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        admin = KafkaAdminClient(**broker.client_config(user))
        admin.list_topics()
        samples.append((time.perf_counter() - t0) * 1000)
        admin.close()
    return statistics.median(samples)


def bench_kafka_security() -> dict[str, float]:
    with SaslSslKafka(users=("quantumedge-risk",)) as broker:
        secret = {"username": ADMIN, "password": broker.password(ADMIN), "ca_pem": broker.ca_pem}
        settings = KafkaSettings(
            bootstrap=broker.bootstrap, security_protocol="SASL_SSL", topic_prefix=f"bench-{uuid.uuid4().hex[:6]}."
        )
        bus = KafkaBus(settings, KafkaCredentials("bench:admin", secret))
        bus.ensure_topics()
        try:
            out = {f"sasl_ssl_{k}": v for k, v in _roundtrip(bus, 20_000).items()}
        finally:
            bus.close()
        out["sasl_ssl_connect_ms"] = _connect_ms(broker, ADMIN)
    for key, value in out.items():
        print(f"  kafka {key:<26} {value:>14,.1f}")
    return out
