"""Backoff with jitter and the weight limiter fed by Binance's headers (clocks injected, nothing sleeps)."""

from __future__ import annotations

import random

from quantumedge.execution.retry import RateLimiter
from quantumedge.shared.backoff import Backoff


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0, rng=random.Random(7))
    delays = [backoff.delay(n) for n in range(8)]
    for n, d in enumerate(delays):
        step = min(1.0, 0.1 * 2**n)
        assert step / 2 <= d <= step
    assert len({round(d, 6) for d in delays[4:]}) > 1  # capped steps still differ: jitter


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_699_999_990.0  # 10 s into a minute

    def monotonic(self) -> float:
        return self.mono

    def time(self) -> float:
        return self.wall


def test_retry_after_blocks_until_it_passes() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock.monotonic, wall=clock.time)
    assert limiter.before() == 0
    limiter.block(3, banned=False)
    assert limiter.before() == 3
    clock.mono += 2.5
    assert limiter.before() == 0.5
    clock.mono += 1
    assert limiter.before() == 0


def test_a_ban_is_remembered_until_it_ends() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock.monotonic, wall=clock.time)
    limiter.block(120, banned=True)
    assert limiter.banned and limiter.before() == 120
    clock.mono += 121
    assert limiter.before() == 0 and not limiter.banned


def test_used_weight_near_the_limit_waits_for_the_next_minute() -> None:
    clock = Clock()
    limiter = RateLimiter(weight_limit_1m=1000, headroom=0.9, clock=clock.monotonic, wall=clock.time)
    limiter.observe({"X-MBX-USED-WEIGHT-1M": "895", "Content-Type": "application/json"})
    assert limiter.before(weight=1) == 0
    assert limiter.before(weight=20) == 50  # 10 s into the minute: 50 s until the counter resets
    clock.wall += 60  # a new minute: the venue's counter has reset
    assert limiter.before(weight=20) == 0
