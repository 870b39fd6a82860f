"""Errors an operator can act on: a reason code, what is missing or in the way, and the setting to change.

The CLI prints one line, `quantumedge <command>: <reason>: <message>`, and exits non-zero; no traceback.
Tests assert on the reason code (`reason`), never on the English text.
"""

from __future__ import annotations


class OperatorError(RuntimeError):
    """Stops a command with one line. `reason` is a stable code; `setting` the knob that fixes it."""

    reason = "error"
    exit_code = 2

    def __init__(self, message: str, *, setting: str = "", reason: str = "") -> None:
        self.message = message
        self.setting = setting
        if reason:
            self.reason = reason
        super().__init__(f"{self.reason}: {message}")


class PortInUseError(OperatorError):
    reason = "port_in_use"


class BrokerUnavailableError(OperatorError):
    reason = "no_broker"


class MarketUnreachableError(OperatorError):
    reason = "no_market_data"


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message, so nothing multi-line reaches the operator's terminal."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
