"""What each service gives the runner: its gRPC servicers, its loops, start and stop."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from quantumedge.shared.bus import Bus
from quantumedge.shared.grpc_server import ServiceBinding

if TYPE_CHECKING:
    from quantumedge.settings import Settings  # the root; shared never imports it at run time


class ServiceBase(abc.ABC):
    name: str = ""

    def __init__(self, settings: Settings, bus: Bus) -> None:
        self.settings = settings
        self.bus = bus

    @abc.abstractmethod
    def grpc_services(self) -> list[ServiceBinding]:
        """[(add_XServicer_to_server, servicer, "quantumedge.v1.XService")]; the runner adds health + reflection."""

    @abc.abstractmethod
    def start(self) -> None:
        """Start consumer loops and background threads; return once the service can do its work."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop loops and threads, flush what was published."""

    def healthy(self) -> bool:
        """False once a loop died; the runner then reports NOT_SERVING so the platform restarts it."""
        return True

    def status_line(self) -> dict[str, Any]:
        """A few counters for the `up` summary and logs."""
        return {}
