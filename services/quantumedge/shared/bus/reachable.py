"""Before any Kafka client starts: does a broker answer at the bootstrap address at all?

kafka-python retries an absent broker for a long time and logs every attempt; a plain TCP connect to each
bootstrap address says in a second whether there is anything to talk to, so a missing broker ends in one
line that names the setting.
"""

from __future__ import annotations

import socket
import time

from quantumedge.shared.errors import BrokerUnavailableError


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return (host.strip("[]") or "localhost"), int(port or 9092)


def answers(address: str, timeout_s: float) -> bool:
    try:
        host, port = _host_port(address)
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def require_broker(bootstrap: str, timeout_s: float = 5.0, setting: str = "QE_KAFKA_BOOTSTRAP") -> None:
    """Raise BrokerUnavailableError unless one bootstrap address accepts a TCP connection within timeout_s."""
    addresses = [a for a in bootstrap.split(",") if a.strip()]
    deadline = time.monotonic() + timeout_s
    while True:
        if any(answers(a, min(1.0, timeout_s)) for a in addresses):
            return
        if time.monotonic() >= deadline:
            raise BrokerUnavailableError(
                f"no Kafka broker answers at {bootstrap}; start one (make kafka-up) or set {setting} "
                "(for a run without Kafka: quantumedge up)",
                setting=setting,
            )
        time.sleep(0.5)
