"""A test-only second commit owner in one module: synchronous commits, journaled.

Not a subclass of KafkaCommits: it implements the CommitOwner protocol on its own, as a
transactional owner will (there ``commit_due`` becomes send_offsets_to_transaction +
commit_transaction). Every commit it makes is appended to ``journal``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from confluent_kafka import KafkaError, TopicPartition

from streamkit.consumer.commits import Committer, PartitionKey
from streamkit.consumer.state import Load, PartitionState
from streamkit.retry.topics import Tier


class JournalCommits:
    def __init__(self, tiers: dict[str, Tier], load: Load) -> None:
        self.states: dict[PartitionKey, PartitionState] = {}
        self.journal: list[tuple[str, int, int]] = []
        self._tiers, self._load = tiers, load
        self._client: Committer | None = None

    def attach(self, client: Committer, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client

    def assign(self, partitions: Iterable[PartitionKey]) -> list[PartitionState]:
        fresh = [
            PartitionState(t, p, self._tiers[t], self._load)
            for t, p in partitions
            if t in self._tiers
        ]
        self.states.update({(s.topic, s.partition): s for s in fresh})
        return fresh

    def detach(self, partitions: Iterable[PartitionKey]) -> list[PartitionState]:
        gone = [self.states.pop(key) for key in partitions if key in self.states]
        for state in gone:
            state.revoked = True
        return gone

    def positions(self, states: Iterable[PartitionState]) -> list[TopicPartition]:
        return [
            TopicPartition(s.topic, s.partition, s.tracker.position)
            for s in states
            if s.tracker.needs_commit() and s.tracker.position >= 0
        ]

    def commit_due(self) -> None:
        self.commit_sync(self.positions(self.states.values()))

    def commit_sync(self, offsets: list[TopicPartition]) -> bool:
        if not offsets:
            return True
        assert self._client is not None
        self._client.commit(offsets=offsets, asynchronous=False)
        for tp in offsets:
            self.journal.append((tp.topic, tp.partition, tp.offset))
            state = self.states.get((tp.topic, tp.partition))
            if state is not None:
                state.tracker.committed = tp.offset
        return True

    def on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        pass  # this owner commits synchronously only
