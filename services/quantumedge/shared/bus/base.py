"""The bus interface both backends implement: Kafka (kafka-python) and the in-process bus."""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from google.protobuf.message import Message

from quantumedge.shared.bus.outage import Outage
from quantumedge.shared.telemetry import inject_headers


class BusError(RuntimeError):
    """A publish was not acknowledged or the bus is unusable; the message says which topic."""


class BusUnavailable(BusError):  # noqa: N818 - a state of the broker, named like the BusError it refines
    """The broker did not answer in time (down, restarting, unreachable): retry with backoff, nothing is lost.

    Every other BusError is one the process cannot recover from by waiting (authorization, a refused record)."""


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes] = field(default_factory=dict)
    timestamp_ms: int = 0


def encode_key(key: str | bytes | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return key.encode()


def encode_value(message: Message | bytes | None) -> bytes | None:
    """None stays None: on a compacted topic that is a tombstone, which deletes the key."""
    if message is None:
        return None
    return message if isinstance(message, bytes) else message.SerializeToString()


class Consumer(abc.ABC):
    """A member of a consumer group. Offsets move only when commit() is called."""

    @abc.abstractmethod
    def poll(self, timeout_s: float = 0.5, max_records: int = 500) -> list[Record]:
        """Records after the group's position, at most max_records, waiting up to timeout_s for the first."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Commit the position after every record returned by poll so far (BusUnavailable: broker down)."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the end of each assigned (topic, partition); called from the polling thread only."""
        return {}


class Bus(abc.ABC):
    """Topics, partitions by key, offsets and consumer groups; values are protobuf bytes."""

    @functools.cached_property
    def outage(self) -> Outage:
        """Whether the broker is down for this process (fed by the consumer loops and the runner's probe)."""
        return Outage()

    def probe(self, timeout_s: float = 1.0) -> None:  # noqa: B027 - the in-process bus is never down
        """Raise BusUnavailable when the broker does not answer within timeout_s."""

    def publish(
        self,
        topic: str,
        key: str | bytes | None,
        message: Message | bytes | None,
        headers: dict[str, bytes] | None = None,
    ) -> None:
        """Send one record keyed by `key` (the symbol), with the current trace context in its headers.

        Asynchronous on Kafka; flush() waits for every acknowledgement and raises BusError if any failed.
        """
        self._send(topic, encode_key(key), encode_value(message), inject_headers(dict(headers or {})))

    @abc.abstractmethod
    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> None: ...

    @abc.abstractmethod
    def flush(self, timeout_s: float = 10.0) -> None:
        """Block until every published record is acknowledged; raise BusError naming what failed."""

    @abc.abstractmethod
    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = False) -> Consumer:
        """Join `group` on `topics`. A group with no committed offset starts at the end, or the beginning."""

    def read_all(self, topic: str, timeout_s: float = 10.0) -> list[Record]:
        """Every record of `topic` from the beginning to its current end, outside any group (state rebuilds)."""
        return self.read_from(topic, {}, timeout_s)

    @abc.abstractmethod
    def read_from(self, topic: str, start: Mapping[int, int], timeout_s: float = 10.0) -> list[Record]:
        """The records of `topic` from offset start[partition] (a partition not named: its beginning; an offset
        the log no longer holds: its earliest) to its current end, outside any group, ordered as read_all."""

    def ensure_topics(self, names: Iterable[str] | None = None) -> None:  # noqa: B027 - optional hook, the in-process bus needs nothing
        """Create the system's topics (logical `names`, default all) when missing."""

    @abc.abstractmethod
    def close(self) -> None: ...
