"""Failed authentications per peer: a bounded burst, then throttled (counted, not audited one by one)."""

from __future__ import annotations

from quantumedge.shared.throttle import THROTTLED, UNAUTHENTICATED, PeerThrottle, peer_host


def test_peer_host_drops_the_port() -> None:
    assert peer_host("ipv4:10.0.0.7:53422") == "ipv4:10.0.0.7"
    assert peer_host("ipv6:[::1]:5000") == "ipv6:[::1]"
    assert peer_host("unix:/tmp/sock") == "unix:/tmp/sock"


def test_a_flood_from_one_peer_is_audited_a_bounded_number_of_times() -> None:
    throttle = PeerThrottle(burst=10, per_minute=30)
    outcomes = [throttle.failure("ipv4:10.0.0.7", i * 14 / 2000) for i in range(2000)]  # 2,000 in 14 s
    audited = [o for o in outcomes if o.audit]
    # The burst, then one per refill (30 a minute: 7 in 14 s); every audit after the burst counts the dropped.
    assert 10 <= len(audited) <= 10 + 8
    assert sum(o.suppressed for o in audited) + len(audited) + throttle._peers["ipv4:10.0.0.7"].suppressed == 2000
    assert [o.code for o in audited[:10]] == [UNAUTHENTICATED] * 9 + [THROTTLED]


def test_another_peer_keeps_its_own_budget_and_time_restores_one() -> None:
    throttle = PeerThrottle(burst=2, per_minute=60)
    assert throttle.failure("a", 0).code == UNAUTHENTICATED
    assert throttle.failure("a", 0).code == THROTTLED
    assert not throttle.failure("a", 0.1).audit
    assert throttle.failure("b", 0.1).audit  # not punished for a's failures
    later = throttle.failure("a", 1.2)  # a second later: one failure's worth of budget back
    assert later.audit and later.suppressed == 1


def test_the_peer_table_is_bounded() -> None:
    throttle = PeerThrottle(burst=1, per_minute=1, max_peers=100)
    for i in range(1000):
        throttle.failure(f"ipv4:10.0.{i // 256}.{i % 256}", 0)
    assert len(throttle) == 100
