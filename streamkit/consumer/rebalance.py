"""Rebalance callbacks, bridged from the poll thread to the event loop.

librdkafka calls these inside ``consume``/``poll``/``close`` on the poll thread. Partition
state belongs to the loop, so each callback hands its work to the loop and waits (bounded)
for the answer. The revoke callback commits before it returns: after it returns the
partitions may already belong to another member, and we must never commit for them again.

The callbacks never call ``assign``/``incremental_assign`` themselves: confluent-kafka does
it when a callback returns without one, picking the incremental calls when the protocol is
cooperative (cooperative-sticky, KIP-848), so a revoke or assignment there lists only the
partitions that move (tests/faults/test_membership.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from confluent_kafka import TopicPartition

from streamkit.consumer.commits import CommitOwner
from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.state import PartitionState

log = structlog.get_logger("streamkit.rebalance")

Drain = Callable[[list[PartitionState], float], Awaitable[object]]


class RebalanceBridge:
    """``on_assign``/``on_revoke``/``on_lost`` for one worker.

    ``detached(state)`` lets the rest of the worker forget a partition (flow gates, parked
    keys, metrics); ``rebalanced(kind, partitions)`` reports what happened.
    """

    def __init__(
        self,
        *,
        poll: PollThread,
        commits: CommitOwner,
        drain: Drain,
        detached: Callable[[PartitionState], None],
        rebalanced: Callable[[str, list[TopicPartition]], None],
        revoke_timeout: float,
        held: Callable[[], bool] = lambda: False,
        settle: Callable[[float], None] = lambda _timeout: None,
    ) -> None:
        self._poll = poll
        self._commits = commits
        self._drain = drain
        self._detached = detached
        self._rebalanced = rebalanced
        self._revoke_timeout = revoke_timeout
        self._held = held  # backpressure on: new partitions start paused
        # A revoke fired by a poll on the loop thread cannot wait for the loop: this
        # settles (bounded, synchronously) the failure records still awaiting acks.
        self._settle = settle

    def on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """New partitions: fresh state for each, fetching (not paused) from the start.

        librdkafka keeps a partition's pause flag across a revoke and a new assignment: a
        partition paused when it was revoked (backpressure, a retry gate, an exactly-once
        commit point) would come back paused for good. Resumed here, on the thread inside
        the callback -- or paused there under backpressure: a fetch made before the
        worker's own pause landed would take the buffer past its bound.
        """
        try:
            self._poll.on_loop(self._assign(partitions), timeout=30)
            (consumer.pause if self._held() else consumer.resume)(partitions)
        except Exception:
            log.exception("assign callback failed")

    def on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Finish (bounded) or abandon in-flight work, then commit what is done."""
        self._settle_inline()
        try:
            offsets = self._poll.on_loop(self._revoke(partitions), self._revoke_timeout + 5)
        except Exception:
            # We cannot know what is done: commit nothing; the new owner re-reads from the
            # last commit (at-least-once).
            log.exception("revoke callback failed; nothing committed for revoked partitions")
            return
        if self._commits.commit_sync(offsets):
            log.info(
                "committed on revoke", offsets=[(t.topic, t.partition, t.offset) for t in offsets]
            )

    def on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Partitions lost (session timed out): drop their work, commit nothing."""
        try:
            self._poll.on_loop(self._lose(partitions), timeout=self._revoke_timeout + 5)
        except Exception:
            log.exception("lost callback failed")

    async def _assign(self, partitions: list[TopicPartition]) -> None:
        self._commits.assign((tp.topic, tp.partition) for tp in partitions)
        self._rebalanced("assigned", partitions)

    def _settle_inline(self) -> None:
        """Inside a poll on the loop thread: settle what can be before a revoke, which
        cannot wait (what is still pending after it is abandoned: not committed). Not
        for a loss: nothing is committed then, so nothing is worth waiting for."""
        if not self._poll.inlined:
            return
        try:
            self._settle(self._revoke_timeout)
        except Exception:  # the revoke itself must still run: detach, commit what is done
            log.exception("settling acks before a rebalance failed")

    async def _revoke(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        states = self._detach(partitions)
        # New work of these partitions stops here (revoked), in-flight work gets a bound;
        # none on the loop thread, where _settle_inline has had it already.
        bound = 0.0 if self._poll.inlined else self._revoke_timeout
        await self._drain(states, bound)
        self._rebalanced("revoked", partitions)
        return self._commits.positions(states)

    async def _lose(self, partitions: list[TopicPartition]) -> None:
        states = self._detach(partitions)
        await self._drain(states, 0)
        self._rebalanced("lost", partitions)

    def _detach(self, partitions: list[TopicPartition]) -> list[PartitionState]:
        states = self._commits.detach((tp.topic, tp.partition) for tp in partitions)
        for state in states:
            self._detached(state)
        return states
