"""Exponential backoff with jitter for reconnects and retries (pure)."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from `initial_s` up to `max_s`; "equal jitter" keeps half of each delay
    and randomises the other half, so a fleet reconnecting after an outage does not stampede."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max(max_s, initial_s)
        self._rng = rng or random.Random()
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 62)
        return ceiling / 2 + self._rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0
