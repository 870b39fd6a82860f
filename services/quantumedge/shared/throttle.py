"""Per-peer throttling of failed authentications (pure: time comes in as `now`, in seconds).

Each peer (an address without its port: a client opens new connections at will) has a bucket of `burst`
failures that refills at `per_minute`. A failure within the budget is answered UNAUTHENTICATED and audited
(the audit says how many failures before it went unaudited); once the bucket is empty, further failures are
answered RESOURCE_EXHAUSTED and only counted. So a flood from one peer writes at most burst + per_minute
audit records a minute. A valid token is never throttled: an operator behind the same address can always Halt.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

UNAUTHENTICATED, THROTTLED = "unauthenticated", "throttled"


@dataclass
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0


@dataclass(frozen=True)
class Failure:
    """What to do with one failed authentication: audit it (with `code`), or only count it."""

    audit: bool
    code: str
    # Failures from this peer since the last audited one that were not audited (throttled).
    suppressed: int = 0


def peer_host(peer: str) -> str:
    """ "ipv4:10.0.0.7:53422" -> "ipv4:10.0.0.7"; "ipv6:[::1]:5000" -> "ipv6:[::1]"; others as they are."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return f"ipv4:{rest.rpartition(':')[0] or rest}"
    if kind == "ipv6" and rest.startswith("["):
        return f"ipv6:{rest[: rest.find(']') + 1]}"
    return peer


class PeerThrottle:
    def __init__(self, burst: int = 10, per_minute: float = 30.0, max_peers: int = 10_000) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self.max_peers = max_peers
        self._peers: OrderedDict[str, _Bucket] = OrderedDict()

    def failure(self, peer: str, now: float) -> Failure:
        bucket = self._peers.get(peer)
        if bucket is None:
            bucket = self._peers[peer] = _Bucket(float(self.burst), now)
            while len(self._peers) > self.max_peers:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(peer)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < 1:
            bucket.suppressed += 1
            return Failure(False, THROTTLED)
        bucket.tokens -= 1
        suppressed, bucket.suppressed = bucket.suppressed, 0
        # The failure that empties the bucket is audited as the start of throttling.
        return Failure(True, THROTTLED if bucket.tokens < 1 else UNAUTHENTICATED, suppressed)

    def __len__(self) -> int:
        return len(self._peers)
