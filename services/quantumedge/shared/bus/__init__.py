"""The message bus: one interface, a Kafka backend and an in-process backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

from quantumedge.shared.bus.base import Bus, BusError, BusUnavailable, Consumer, Record
from quantumedge.shared.bus.memory import MemoryBus

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root; shared never imports it at run time


def make_bus(settings: Settings, identity: str | None = None) -> Bus:
    """The bus the settings ask for: in-process for the embedded default, Kafka otherwise.

    `identity` is whose Kafka credentials to read from Vault: the service's name (one principal per process),
    or `admin` for `quantumedge topics`. Raises kafka_security.KafkaSecurityError when they are needed and
    cannot be had, or when the protocol is plaintext and not allowed."""
    if settings.bus == "memory":
        return MemoryBus(partitions=settings.kafka.partitions, symbols=settings.symbols)
    from quantumedge.shared.bus.kafka import KafkaBus
    from quantumedge.shared.bus.kafka_security import (
        ONE_PRINCIPAL_PER_PROCESS,
        KafkaSecurityError,
        check_protocol,
        load_credentials,
    )

    check_protocol(
        settings.kafka, plaintext_allowed=settings.behaviours.kafka_plaintext_allowed
    )  # before logging in to Vault for nothing
    credentials = None
    if settings.kafka.needs_credentials:
        if identity is None:
            raise KafkaSecurityError(
                ONE_PRINCIPAL_PER_PROCESS,
                f"kafka.security_protocol={settings.kafka.security_protocol}: each service has its own Kafka "
                "principal, so run one service per process (`quantumedge serve NAME`)",
            )
        credentials = load_credentials(settings, identity)
    return KafkaBus(
        settings.kafka,
        credentials,
        plaintext_allowed=settings.behaviours.kafka_plaintext_allowed,
        symbols=settings.symbols,
    )


__all__ = ["Bus", "BusError", "BusUnavailable", "Consumer", "MemoryBus", "Record", "make_bus"]
