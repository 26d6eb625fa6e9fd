"""Flow control by pausing partitions: retry-delay gates and backpressure.

Both keep the poll loop polling -- the member stays in the group, heartbeats and
rebalances go on -- while no new records of the paused partitions are fetched.
Nothing here ever sleeps.

The client calls (``pause``, ``resume``, ``seek``) are queued to the poll thread, never
made on the loop thread: librdkafka's pause and resume wait for their op to be served,
confluent-kafka holds the GIL meanwhile, and while the poll thread sits in a rebalance
callback that waits for the loop, the op is not served -- the loop and the callback
blocked each other until the assign timeout. Queued there, a call runs before the next
``consume`` (one thread, in order), so a paused partition yields nothing more; decisions
stay on the loop (``state.gated``, ``_held``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from confluent_kafka import KafkaException, TopicPartition

from streamkit import envelope as env
from streamkit.consumer.state import PartitionState

log = structlog.get_logger("streamkit.consumer")

Later = Callable[..., None]  # queue a call to the poll thread, fire and forget


def logged(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn``; an error (a partition revoked meanwhile, a closed client) is logged."""
    try:
        fn(*args)
    except (KafkaException, RuntimeError) as exc:
        log.debug("flow-control call failed", call=getattr(fn, "__name__", "?"), error=str(exc))


class FlowControl:
    """Pauses and resumes partitions; the owner of every ``pause``/``resume`` call."""

    def __init__(self, consumer: Any, max_buffered: int, max_pending: int, later: Later) -> None:
        self._consumer = consumer
        self._later = later
        self._max_buffered = max_buffered
        self._max_pending = max_pending
        self._gates: dict[PartitionState, float] = {}  # state -> due time (epoch seconds)
        self._held: set[PartitionState] = set()  # paused by backpressure
        self.backpressure = False
        self._stopped = False  # pause_all: nothing resumes any more

    # -- retry delay gates -------------------------------------------------------------

    def gate(self, msg: Any, headers: env.Headers | None, state: PartitionState) -> bool:
        """Pause ``state`` at ``msg`` if it is a retry record not yet due; True if paused.

        The partition is sought back to this record, so it is fetched again when due:
        the due time lives in the record's headers and so survives restarts.
        """
        not_before = env.header_int(headers, env.H_NOT_BEFORE)
        if not_before is None or not_before <= time.time() * 1000:
            return False
        tp = TopicPartition(msg.topic(), msg.partition(), msg.offset())
        self._later(self._consumer.pause, [tp])
        self._later(self._consumer.seek, tp)
        state.gated = True
        self._gates[state] = not_before / 1000
        return True

    def resume_due(self) -> None:
        """Resume every gated partition whose head record is now due."""
        if not self._gates or self._stopped:
            return
        now = time.time()
        due = [s for s, at in self._gates.items() if at <= now]
        for state in due:
            del self._gates[state]
            state.gated = False
            if not state.revoked and not self.backpressure:
                tp = TopicPartition(state.topic, state.partition)
                self._later(self._consumer.resume, [tp])

    def next_due_in(self) -> float | None:
        """Seconds until the next gate opens, or None when nothing is gated."""
        if not self._gates:
            return None
        return max(min(self._gates.values()) - time.time(), 0.0)

    def forget(self, state: PartitionState) -> None:
        """Drop the gate of a revoked partition."""
        self._gates.pop(state, None)
        self._held.discard(state)

    # -- backpressure ------------------------------------------------------------------

    def check(self, buffered: int, states: list[PartitionState]) -> None:
        """Pause everything at the buffer bound; resume below half of it.

        The buffer is much larger than the handler concurrency, so the fetch that follows
        a resume (tens of milliseconds) is hidden behind work already in memory.
        """
        if self._stopped:
            return
        too_much = buffered >= self._max_buffered or any(
            s.tracker.span >= self._max_pending for s in states
        )
        if too_much and not self.backpressure:
            self.backpressure = True
            self._set_paused(states, paused=True)
        elif self.backpressure and not too_much and buffered <= self._max_buffered // 2:
            self.backpressure = False
            # Every partition, not only ``_held``: one assigned meanwhile was paused by the
            # rebalance callback before a check saw it. Resuming an unpaused one is a no-op.
            self._set_paused(states, paused=False)
        elif self.backpressure:
            # Partitions assigned while paused: hold them too, or the bound leaks.
            self._set_paused([s for s in states if s not in self._held], paused=True)

    def pause_all(self, states: list[PartitionState]) -> None:
        """Stop fetching everything (shutdown): nothing new is started from here on."""
        self._stopped = True  # a later check must not resume what shutdown paused
        tps = [TopicPartition(s.topic, s.partition) for s in states]
        if tps:
            self._later(self._consumer.pause, tps)

    def _set_paused(self, states: list[PartitionState], *, paused: bool) -> None:
        chosen = [s for s in states if not s.gated and not s.revoked]
        tps = [TopicPartition(s.topic, s.partition) for s in chosen]
        if paused:
            self._held.update(chosen)
        else:
            self._held.clear()
        if not tps:
            return
        self._later(self._consumer.pause if paused else self._consumer.resume, tps)
