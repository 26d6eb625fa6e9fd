"""Per-partition runtime state and the in-flight bookkeeping, owned by the event-loop thread.

Every event taken from Kafka is counted twice: in its partition (``running``, ``acks``: a
revoke waits for exactly these) and in the worker-wide :class:`Load` (``buffered``: what
backpressure bounds). The methods here are the only places those counters change.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from streamkit.consumer.tracker import OffsetTracker
from streamkit.record import Record
from streamkit.retry.topics import Tier

NO_CUT = 1 << 62  # no commit point in progress: every job may start


class Load:
    """Worker-wide counts of events in memory and failure records awaiting an ack."""

    __slots__ = ("acks", "buffered", "drained_below", "on_drained", "resending")

    def __init__(
        self, on_drained: Callable[[], None] = lambda: None, drained_below: int = 0
    ) -> None:
        self.buffered = 0  # events taken from Kafka, not yet done (bounded by backpressure)
        self.acks = 0  # retry/DLQ/parking publishes not yet acknowledged
        self.resending = 0  # of those, failed and waiting out a backoff before a resend
        self.on_drained = on_drained  # resume paused partitions now, not at the next poll
        self.drained_below = drained_below


class PartitionState:
    """One assigned partition: its offsets, its work in flight, whether it was revoked.

    A new object is made for every assignment, so late callbacks for an earlier assignment
    of the same partition find ``revoked`` set and leave the new one alone.
    """

    __slots__ = (
        "acks",
        "awaiting",
        "cut",
        "failed_outputs",
        "gated",
        "held",
        "load",
        "partition",
        "revoked",
        "running",
        "started",
        "tasks",
        "tier",
        "topic",
        "tracker",
        "waiter",
    )

    def __init__(self, topic: str, partition: int, tier: Tier, load: Load | None = None) -> None:
        self.topic = topic
        self.partition = partition
        self.tier = tier
        self.load = load or Load()
        self.tracker = OffsetTracker()
        self.revoked = False
        self.gated = False  # paused until its head retry record is due
        self.running = 0  # jobs started or queued behind a lane, not yet released
        self.held = 0  # of those, waiting on a dependency (consumer/hold): not drained for
        # Of those, handled by a sync handler and waiting only for its publishes' acks: they
        # hold their offsets but no lane. ``running == awaiting``: no job holds or waits
        # for a lane, so a record may be handled on the spot (dispatch's hot path).
        self.awaiting = 0
        self.acks = 0  # retry/DLQ publishes awaiting the broker's acknowledgement
        # Each running task of this partition -> what undoes its bookkeeping if it is
        # cancelled before it ever ran (its body, and so its own clean-up, never runs).
        # A task takes itself out as it ends (:meth:`track`, :meth:`untrack`).
        self.tasks: dict[asyncio.Task[None], Callable[[], None]] = {}
        self.waiter: asyncio.Future[None] | None = None
        # Exactly-once commit points: the highest offset handed to a handler, and the cut
        # at and above which a queued job is dropped (read again after the commit).
        self.started = -1
        self.cut = NO_CUT
        # Read again from an input whose emitted record failed (consumer/confirmed): its
        # offset -> the delivery's error. Such an input goes down the failure path.
        self.failed_outputs: dict[int, BaseException] | None = None

    # -- in-flight bookkeeping ---------------------------------------------------------

    def begin(self, record: Record) -> None:
        """``record`` enters the in-flight set: its offset is held until it is done."""
        self.tracker.begin(record.offset(), record.timestamp()[1])
        self.running += 1
        self.load.buffered += 1

    def release(self) -> None:
        """A begun job left the handler stage (done, failed over, or abandoned)."""
        self.running -= 1
        load = self.load
        load.buffered -= 1
        self.notify_if_idle()
        if load.buffered == load.drained_below:
            load.on_drained()

    def await_outputs(self, offset: int) -> None:
        """The begun event at ``offset`` was handled and waits only for its publishes'
        acks: its offset stays held, its lane is free (``awaiting``)."""
        if offset > self.started:  # see quiesce's cut: the highest offset handed out
            self.started = offset
        self.awaiting += 1

    def outputs_settled(self) -> None:
        """Those acks came (or failed): the event's outcome is settled next."""
        self.awaiting -= 1

    def track(self, task: asyncio.Task[None], undo: Callable[[], None]) -> None:
        """``task`` runs work of this partition; ``undo`` gives back what it holds if it
        is cancelled before its first step (see :func:`drain`)."""
        self.tasks[task] = undo

    def untrack(self) -> None:
        """The current task is ending and gives back what it holds itself."""
        self.tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]

    def set_aside(self) -> None:
        """A begun job waits on a dependency: still running (its lane, its offset held),
        but a drain does not wait for it -- uncommitted, it is redelivered."""
        self.held += 1
        self.notify_if_idle()

    def take_back(self) -> None:
        """A held job runs again (or is abandoned)."""
        self.held -= 1

    def ack_started(self) -> None:
        """A retry/DLQ record of this partition was sent; its source offset waits for it."""
        self.acks += 1
        self.load.acks += 1

    def ack_ended(self) -> None:
        """That record was acknowledged (or abandoned with the partition)."""
        self.acks -= 1
        self.load.acks -= 1
        self.notify_if_idle()

    # -- draining ----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while any work of this partition is in flight."""
        return bool(self.running - self.held or self.acks)

    def notify_if_idle(self) -> None:
        """Wake a revoke/shutdown waiting for this partition to drain."""
        if self.waiter is not None and not self.busy and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait_idle(self) -> None:
        """Return once nothing of this partition is in flight."""
        if not self.busy:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter

    def __repr__(self) -> str:
        return f"PartitionState({self.topic}[{self.partition}] running={self.running})"


async def drain(states: list[PartitionState], bound: float) -> list[PartitionState]:
    """Wait for the in-flight work of ``states`` up to ``bound``; cancel what is left.

    What is cancelled is not done, so not committed: the next owner handles it again.
    Returns the states that still had work at the bound (their events are abandoned).
    """
    busy = [s for s in states if s.busy]
    # Bound 0 waits for nothing (a revoke on the loop thread cannot: PollThread.inline).
    waits = [asyncio.ensure_future(s.wait_idle()) for s in busy] if bound > 0 else []
    if waits:
        try:
            await asyncio.wait(waits, timeout=bound)
        finally:  # also when this drain is cancelled: no waiter outlives it
            for fut in waits:
                fut.cancel()
    abandoned = [s for s in busy if s.busy]
    leftovers = [task for s in states for task in s.tasks if not task.done()]
    for task in leftovers:
        task.cancel()
    if leftovers:
        await asyncio.wait(leftovers, timeout=1.0)
    for state in states:
        _never_ran(state)
    return abandoned


def _never_ran(state: PartitionState) -> None:
    """Undo the bookkeeping of tasks cancelled before they ever ran.

    A task takes itself out of ``state.tasks`` as it ends; one cancelled before its first
    step never ran its body, so it is still there, done. A task started just before a
    drain with bound 0 (a lost partition, an aborted transaction) is one: left as it was,
    the scheduler's running count, the worker's buffered count and its lane stay taken.
    """
    for task, undo in list(state.tasks.items()):
        if task.done():
            del state.tasks[task]
            undo()


def disown(state: PartitionState) -> None:
    """A partition read again (an abort, a failed emitted record): its leftover work stops
    counting in the worker-wide load.

    Its events are read and done again from where it is rewound to; a retry/DLQ send still
    waiting out its backoff would otherwise hold every later commit point (each would
    abort: work in flight). Late callbacks of the old state count on a private load.
    """
    shared, state.load = state.load, Load()
    shared.buffered -= state.running
    shared.acks -= state.acks
    state.load.buffered, state.load.acks = state.running, state.acks
