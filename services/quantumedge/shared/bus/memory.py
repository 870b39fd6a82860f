"""An in-process bus with Kafka's semantics, for the embedded default and fast unit tests.

Topics have partitions chosen by the same SymbolPartitioner as the Kafka producer's, records have offsets, consumer
groups share partitions between members and resume from committed offsets. It is not a proof
that anything works on Kafka: integration tests run the same code on a real broker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence

from quantumedge.shared.bus.base import Bus, Consumer, Record
from quantumedge.shared.bus.partitioning import SymbolPartitioner


class _Group:
    def __init__(self) -> None:
        self.committed: dict[tuple[str, int], int] = {}
        self.members: list[MemoryConsumer] = []


class MemoryBus(Bus):
    def __init__(self, partitions: int = 3, symbols: Sequence[str] = ()) -> None:
        self._partitions = partitions
        self.partitioner = SymbolPartitioner(symbols)
        self._logs: dict[str, list[list[Record]]] = {}
        self._groups: dict[str, _Group] = {}
        self._cond = threading.Condition()
        self._closed = False

    # -- topics -----------------------------------------------------------------------------------
    def _topic(self, topic: str) -> list[list[Record]]:
        logs = self._logs.get(topic)
        if logs is None:
            logs = self._logs[topic] = [[] for _ in range(self._partitions)]
        return logs

    def partition_for(self, key: bytes | None, topic: str) -> int:
        logs = self._topic(topic)
        if key is None:
            # Like Kafka's sticky partitioner for unkeyed records: any partition is fine; keep it simple.
            return 0
        return self.partitioner.index(key, len(logs))

    def _send(self, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, bytes]) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("bus is closed")
            part = self.partition_for(key, topic)
            log = self._topic(topic)[part]
            log.append(Record(topic, part, len(log), key, value, headers, int(time.time() * 1000)))
            self._cond.notify_all()

    def flush(self, timeout_s: float = 10.0) -> None:
        """Nothing is buffered: a publish is visible as soon as it returns."""

    def end_offsets(self, topic: str) -> list[int]:
        with self._cond:
            return [len(log) for log in self._topic(topic)]

    def read_from(self, topic: str, start: Mapping[int, int], timeout_s: float = 10.0) -> list[Record]:
        with self._cond:
            records = [r for part, log in enumerate(self._topic(topic)) for r in log[max(0, start.get(part, 0)) :]]
        return sorted(records, key=lambda r: (r.timestamp_ms, r.partition, r.offset))

    # -- groups -----------------------------------------------------------------------------------
    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = False) -> MemoryConsumer:
        with self._cond:
            consumer = MemoryConsumer(self, group, list(topics), from_beginning)
            self._groups.setdefault(group, _Group()).members.append(consumer)
            self._rebalance(group)
            return consumer

    def _rebalance(self, group: str) -> None:
        """Round-robin partitions over members, like Kafka's range/round-robin assignors."""
        members = self._groups[group].members
        for member in members:
            member._assigned = []
        for topic in sorted({t for m in members for t in m.topics}):
            subscribers = [m for m in members if topic in m.topics]
            for part in range(len(self._topic(topic))):
                subscribers[part % len(subscribers)]._assigned.append((topic, part))
        for member in members:
            member._positions = {tp: member._start_offset(tp) for tp in member._assigned}
            member._origin = dict(member._positions)

    def _leave(self, consumer: MemoryConsumer) -> None:
        with self._cond:
            group = self._groups.get(consumer.group)
            if group and consumer in group.members:
                group.members.remove(consumer)
                if group.members:
                    self._rebalance(consumer.group)

    def total_lag(self) -> int:
        """Records not yet committed, summed over every group and the partitions its members hold."""
        with self._cond:
            lag = 0
            for group in self._groups.values():
                for member in group.members:
                    for tp in member._assigned:
                        end = len(self._topic(tp[0])[tp[1]])
                        lag += end - group.committed.get(tp, member._positions.get(tp, end))
            return lag

    def _undelivered_locked(self) -> dict[str, int]:
        """Per group, records published to its partitions and not yet committed (the caller holds the lock).

        Committed, not polled: a loop commits only after its handlers' outputs were published, so a group at
        zero has also handed on everything it produced from those records."""
        out: dict[str, int] = {}
        for name, group in self._groups.items():
            lag = 0
            for member in group.members:
                for tp in member._assigned:
                    end = len(self._topic(tp[0])[tp[1]])
                    lag += end - group.committed.get(tp, member._origin.get(tp, end))
            if lag:
                out[name] = lag
        return out

    def undelivered(self) -> dict[str, int]:
        """Groups with records not yet committed, and how many (empty: the bus is quiescent)."""
        with self._cond:
            return self._undelivered_locked()

    def wait_quiescent(self, timeout_s: float) -> bool:
        """Wait until no group has an uncommitted record (True) or `timeout_s` has passed (False).

        Lockstep for the embedded accelerated run (ingest/lockstep.py): the feed publishes its next step only
        once every hop downstream has consumed the last one, so all services share one market present."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._undelivered_locked():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class MemoryConsumer(Consumer):
    def __init__(self, bus: MemoryBus, group: str, topics: list[str], from_beginning: bool) -> None:
        self.bus = bus
        self.group = group
        self.topics = topics
        self.from_beginning = from_beginning
        self._assigned: list[tuple[str, int]] = []
        self._positions: dict[tuple[str, int], int] = {}
        # Where each assigned partition was taken up: undelivered before the member's first commit.
        self._origin: dict[tuple[str, int], int] = {}
        self._closed = False

    def _start_offset(self, tp: tuple[str, int]) -> int:
        committed = self.bus._groups[self.group].committed.get(tp)
        if committed is not None:
            return committed
        return 0 if self.from_beginning else len(self.bus._topic(tp[0])[tp[1]])

    def poll(self, timeout_s: float = 0.5, max_records: int = 500) -> list[Record]:
        deadline = time.monotonic() + timeout_s
        with self.bus._cond:
            while True:
                out: list[Record] = []
                # Every partition gets its share of a poll before any gets more, as a Kafka fetch spans
                # partitions: draining one topic before the next would hand consumers a backlog topic by
                # topic, an order no broker produces (and one inference's reorder buffer must force).
                share = max(1, max_records // max(1, len(self._assigned)))
                for limit in (share, max_records):
                    for tp in self._assigned:
                        log = self.bus._topic(tp[0])[tp[1]]
                        pos = self._positions[tp]
                        take = log[pos : pos + min(limit, max_records - len(out))]
                        out.extend(take)
                        self._positions[tp] = pos + len(take)
                    if len(out) >= max_records:
                        break
                remaining = deadline - time.monotonic()
                if out or remaining <= 0 or self._closed or self.bus._closed:
                    return out
                self.bus._cond.wait(remaining)

    def commit(self) -> None:
        with self.bus._cond:
            self.bus._groups[self.group].committed.update(self._positions)
            self.bus._cond.notify_all()  # wakes wait_quiescent; pollers re-check and sleep again

    def lag(self) -> dict[tuple[str, int], int]:
        with self.bus._cond:
            return {tp: len(self.bus._topic(tp[0])[tp[1]]) - pos for tp, pos in self._positions.items()}

    def close(self) -> None:
        self._closed = True
        self.bus._leave(self)
