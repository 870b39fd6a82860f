"""Per-peer throttling of failed authentications (pure: time comes in as `now`, in seconds).

Each peer (an address without its port: a client opens new connections at will) has a bucket of `burst`
failures that refills at `per_minute`. A failure within the budget is answered UNAUTHENTICATED and audited;
once the bucket is empty the peer is throttled: its calls are answered RESOURCE_EXHAUSTED without checking a
token (no guessing) and without an audit record each, and one summary record says how many were dropped.
So a flood from one peer writes at most burst + per_minute audit records a minute, plus one per episode.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

# A failure the caller must audit / a throttled call it must not.
AUDIT, THROTTLED = "audit", "throttled"


@dataclass
class _Bucket:
    tokens: float
    updated: float
    throttled: bool = False
    suppressed: int = 0


@dataclass(frozen=True)
class Episode:
    """What a peer did while throttled, reported once when it is throttled again or recovers."""

    peer: str
    suppressed: int


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

    def _bucket(self, peer: str, now: float) -> _Bucket:
        bucket = self._peers.get(peer)
        if bucket is None:
            bucket = self._peers[peer] = _Bucket(float(self.burst), now)
            while len(self._peers) > self.max_peers:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(peer)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        return bucket

    def admit(self, peer: str, now: float) -> tuple[bool, Episode | None]:
        """Before checking credentials: (False, _) = answer RESOURCE_EXHAUSTED now. An Episode is returned once,
        when a throttled peer has budget again, with how many calls were dropped meanwhile (audit it)."""
        bucket = self._bucket(peer, now)
        if bucket.throttled and bucket.tokens < 1:
            bucket.suppressed += 1
            return False, None
        episode = None
        if bucket.throttled:
            episode = Episode(peer, bucket.suppressed)
            bucket.throttled, bucket.suppressed = False, 0
        return True, episode

    def failed(self, peer: str, now: float) -> str:
        """A failed authentication: AUDIT while within the budget, THROTTLED for the one that empties it."""
        bucket = self._bucket(peer, now)
        bucket.tokens -= 1
        if bucket.tokens < 1:
            bucket.throttled = True
            return THROTTLED
        return AUDIT

    def __len__(self) -> int:
        return len(self._peers)
