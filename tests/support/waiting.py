"""One polling helper for tests that wait on asynchronous consumers, threads or processes.

A bound on waiting, not a timing assertion: the test fails with `what` only when the condition never holds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout_s: float = 20.0, what: str = "condition", interval_s: float = 0.02
) -> T:
    """Poll until predicate() is truthy and return that value; AssertionError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval_s)
    return value
