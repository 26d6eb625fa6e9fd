"""The commit owner: partition states, positions, commits and the rebalance hand-off.

Everything about offsets goes through one object, so a second mode (a transactional one
that sends offsets with the produced records) is a second implementation of
:class:`CommitOwner`, not edits across the runtime.

Threads: positions are read on the event-loop thread (trackers belong to it); the blocking
:meth:`KafkaCommits.commit_sync` runs on the poll thread (revoke, shutdown); ``on_commit``
is librdkafka's callback, also on the poll thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import structlog
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from streamkit.consumer.state import Load, PartitionState
from streamkit.retry.topics import Tier

log = structlog.get_logger("streamkit.commits")

PartitionKey = tuple[str, int]


class Committer(Protocol):
    """The client call that stores offsets (confluent-kafka's ``Consumer.commit``)."""

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> Any:
        """Store ``offsets`` for the group."""
        ...


class CommitOwner(Protocol):
    """Owns partition states and the offsets committed for them."""

    states: dict[PartitionKey, PartitionState]

    def attach(self, client: Committer, loop: asyncio.AbstractEventLoop) -> None:
        """The client to commit through, and the loop that owns the states."""

    def assign(self, partitions: Iterable[PartitionKey]) -> list[PartitionState]:
        """Fresh states for newly assigned partitions (of topics this worker reads)."""
        ...

    def detach(self, partitions: Iterable[PartitionKey]) -> list[PartitionState]:
        """Revoked or lost: their states leave, marked revoked; commit nothing for them later."""
        ...

    def positions(self, states: Iterable[PartitionState]) -> list[TopicPartition]:
        """What to commit for ``states`` (loop thread)."""
        ...

    def commit_due(self) -> None:
        """The periodic commit (loop thread, every ``commit_interval``)."""

    def commit_sync(self, offsets: list[TopicPartition]) -> bool:
        """A blocking commit before a revoke returns, and at shutdown (poll thread)."""
        ...

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's ``on_commit`` callback for the asynchronous commits."""


class KafkaCommits:
    """Commits the group's positions to Kafka: async periodically, sync on revoke/shutdown."""

    def __init__(
        self,
        tiers: dict[str, Tier],
        load: Load,
        *,
        on_result: Callable[[str], None] = lambda outcome: None,
        group: str = "",
    ) -> None:
        self.states: dict[PartitionKey, PartitionState] = {}
        self._tiers = tiers
        self._load = load
        self._on_result = on_result  # "ok" / "failed", for the commits metric
        self._group = group
        self._client: Committer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, client: Committer, loop: asyncio.AbstractEventLoop) -> None:
        """Commit through ``client``; ``loop`` owns the states."""
        self._client, self._loop = client, loop

    def assign(self, partitions: Iterable[PartitionKey]) -> list[PartitionState]:
        """Fresh states for the partitions of topics this worker reads."""
        fresh = []
        for topic, partition in partitions:
            tier = self._tiers.get(topic)
            if tier is not None:
                state = PartitionState(topic, partition, tier, self._load)
                self.states[(topic, partition)] = state
                fresh.append(state)
        return fresh

    def detach(self, partitions: Iterable[PartitionKey]) -> list[PartitionState]:
        """Take the states of revoked partitions out; late callbacks find them revoked."""
        gone = []
        for key in partitions:
            state = self.states.pop(key, None)
            if state is not None:
                state.revoked = True
                gone.append(state)
        return gone

    def positions(self, states: Iterable[PartitionState]) -> list[TopicPartition]:
        """The position of each state that moved past its last commit."""
        return [
            TopicPartition(s.topic, s.partition, s.tracker.position)
            for s in states
            if s.tracker.position >= 0 and s.tracker.needs_commit()
        ]

    def commit_due(self) -> None:
        """Commit every moved position asynchronously (batched: never per message)."""
        self.commit_async(self.positions(self.states.values()))

    def commit_async(self, offsets: list[TopicPartition]) -> None:
        """Commit ``offsets`` without waiting (loop thread); a failure is retried later."""
        if not offsets:
            return
        try:
            self._committer().commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            self._failed(exc)
            return
        for tp in offsets:
            self.states[(tp.topic, tp.partition)].tracker.committed = tp.offset

    def commit_sync(self, offsets: list[TopicPartition]) -> bool:
        """Blocking commit (poll thread): on revoke and at shutdown."""
        if not offsets:
            return True
        try:
            self._committer().commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._failed(exc)
            return False
        self._on_result("ok")
        for tp in offsets:
            state = self.states.get((tp.topic, tp.partition))
            if state is not None:  # a plain int store; the loop only reads it
                state.tracker.committed = tp.offset
        return True

    def seek_to(self, offsets: list[TopicPartition]) -> None:
        """Read these partitions again from these offsets (poll thread).

        Each is resumed too, as a new assignment is: a partition paused by a retry gate or
        backpressure would stay paused for good, its old state (and pause) forgotten.
        Backpressure pauses it again at the next check if it must.
        """
        consumer = self._committer()
        for tp in offsets:
            consumer.seek(tp)  # type: ignore[attr-defined]
        if offsets:
            consumer.resume([TopicPartition(tp.topic, tp.partition) for tp in offsets])  # type: ignore[attr-defined]

    def seek_committed(self, partitions: Iterable[PartitionKey], timeout: float = 10.0) -> None:
        """Read every partition again from its committed offset (poll thread)."""
        consumer = self._committer()
        tps = [TopicPartition(t, p) for t, p in partitions]
        if not tps:
            return
        committed = consumer.committed(tps, timeout=timeout)  # type: ignore[attr-defined]
        self.seek_to([_from_committed(tp) for tp in committed])

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Count the result of an async commit; a failed one is committed again later."""
        if err is None or err.code() == KafkaError._NO_OFFSET:
            self._on_result("ok")
            return
        self._failed(KafkaException(err))
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._recommit, partitions)

    def _recommit(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            state = self.states.get((tp.topic, tp.partition))
            if state is not None:
                state.tracker.committed = -1  # commit it again at the next interval

    def _failed(self, exc: BaseException) -> None:
        self._on_result("failed")
        log.error("offset commit failed", group=self._group, error=str(exc))

    def _committer(self) -> Committer:
        if self._client is None:
            raise RuntimeError("KafkaCommits used before attach()")
        return self._client


def _from_committed(tp: TopicPartition) -> TopicPartition:
    """Where to read again: the committed offset, or the beginning when none was."""
    return TopicPartition(tp.topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
