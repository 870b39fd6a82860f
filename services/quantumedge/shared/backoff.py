"""Exponential backoff with jitter, for every reconnect and retry in the system (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

# 2**62 steps is far past any cap; bounding the exponent keeps the float product finite.
_MAX_EXPONENT = 62


@dataclass
class Backoff:
    """Delays that double from `base_s` up to `cap_s`. "Equal jitter" keeps half of each step and randomises
    the other half, so a fleet reconnecting after an outage does not stampede.

    Use `delay(attempt)` when the caller counts attempts, or `next_delay()` / `reset()` to let it count.
    """

    base_s: float = 0.2
    cap_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.cap_s = max(self.cap_s, self.base_s)

    def delay(self, attempt: int) -> float:
        step = min(self.cap_s, self.base_s * (2 ** min(max(attempt, 0), _MAX_EXPONENT)))
        return step / 2 + self.rng.uniform(0, step / 2)

    def next_delay(self) -> float:
        delay = self.delay(self.attempt)
        self.attempt = min(self.attempt + 1, _MAX_EXPONENT)
        return delay

    def reset(self) -> None:
        self.attempt = 0
