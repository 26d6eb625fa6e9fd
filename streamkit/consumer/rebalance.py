"""Rebalance callbacks, bridged from the poll thread to the event loop.

librdkafka calls these inside ``consume``/``poll``/``close`` on the poll thread. Partition
state belongs to the loop, so each callback hands its work to the loop and waits (bounded)
for the answer. The revoke callback commits before it returns: after it returns the
partitions may already belong to another member, and we must never commit for them again.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog
from confluent_kafka import TopicPartition

from streamkit.consumer.state import PartitionState

if TYPE_CHECKING:
    from streamkit.consumer.runtime import Worker

log = structlog.get_logger("streamkit.rebalance")


class RebalanceBridge:
    """``on_assign``/``on_revoke``/``on_lost`` for one worker."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def _on_loop(self, coro: Any, timeout: float) -> Any:
        if self.worker._polling_inline:
            return _drive(coro)  # already on the loop thread, with nothing in flight
        loop = self.worker._loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)

    def on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """New partitions: fresh state for each; the first call makes the worker ready."""
        try:
            self._on_loop(self._assign(partitions), timeout=30)
        except Exception:
            log.exception("assign callback failed")

    def on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Finish (bounded) or abandon in-flight work, then commit what is done."""
        w = self.worker
        try:
            offsets = self._on_loop(self._revoke(partitions), timeout=w.settings.revoke_timeout + 5)
        except Exception:
            # We cannot know what is done: commit nothing; the new owner re-reads from the
            # last commit (at-least-once).
            log.exception("revoke callback failed; nothing committed for revoked partitions")
            return
        if w._commit_sync(offsets):
            log.info(
                "committed on revoke", offsets=[(t.topic, t.partition, t.offset) for t in offsets]
            )

    def on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        """Partitions lost (session timed out): drop their work, commit nothing."""
        try:
            self._on_loop(self._lose(partitions), timeout=self.worker.settings.revoke_timeout + 5)
        except Exception:
            log.exception("lost callback failed")

    async def _assign(self, partitions: list[TopicPartition]) -> None:
        w = self.worker
        for tp in partitions:
            tier = w.tiers.get(tp.topic)
            if tier is not None:
                w.states[(tp.topic, tp.partition)] = PartitionState(tp.topic, tp.partition, tier)
        self._rebalanced("assigned", partitions)
        w.health.set_ready(True)
        w.metrics.child(w.metrics.ready, w.group).set(1)

    async def _revoke(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        w = self.worker
        states = self._detach(partitions)
        # New work of these partitions stops here (revoked), in-flight work gets a bound.
        await w.drain(states, w.settings.revoke_timeout)
        w.stats.flush()
        self._rebalanced("revoked", partitions)
        return w._positions(states)

    async def _lose(self, partitions: list[TopicPartition]) -> None:
        w = self.worker
        states = self._detach(partitions)
        await w.drain(states, 0)
        self._rebalanced("lost", partitions)

    def _detach(self, partitions: list[TopicPartition]) -> list[PartitionState]:
        w = self.worker
        states = []
        for tp in partitions:
            state = w.states.pop((tp.topic, tp.partition), None)
            if state is not None:
                state.revoked = True
                w.flow.forget(state)
                if state.tier.n == 0:
                    w.dispatcher.lot.drop_partition(tp.topic, tp.partition)
                w.metrics.forget_partition(w.group, tp.topic, tp.partition)
                states.append(state)
        return states

    def _rebalanced(self, kind: str, partitions: list[TopicPartition]) -> None:
        w = self.worker
        w.metrics.child(w.metrics.rebalances, w.group, kind).inc()
        w.metrics.child(w.metrics.assigned_partitions, w.group).set(len(w.states))
        log.info(
            "partitions " + kind,
            group=w.group,
            partitions=[f"{tp.topic}[{tp.partition}]" for tp in partitions],
            assigned=len(w.states),
        )


def _drive(coro: Any) -> Any:
    """Run a coroutine that has nothing to wait for to completion, synchronously."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("rebalance work needed to wait while polling on the loop thread")
