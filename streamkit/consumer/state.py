"""Per-partition runtime state, owned by the event-loop thread."""

from __future__ import annotations

import asyncio

from streamkit.consumer.tracker import OffsetTracker
from streamkit.retry.topics import Tier


class PartitionState:
    """One assigned partition: its offsets, its work in flight, whether it was revoked.

    A new object is made for every assignment, so late callbacks for an earlier assignment
    of the same partition find ``revoked`` set and leave the new one alone.
    """

    __slots__ = (
        "acks",
        "gated",
        "partition",
        "revoked",
        "running",
        "tasks",
        "tier",
        "topic",
        "tracker",
        "waiter",
    )

    def __init__(self, topic: str, partition: int, tier: Tier) -> None:
        self.topic = topic
        self.partition = partition
        self.tier = tier
        self.tracker = OffsetTracker()
        self.revoked = False
        self.gated = False  # paused until its head retry record is due
        self.running = 0  # jobs started or queued behind a lane, not yet released
        self.acks = 0  # retry/DLQ publishes awaiting the broker's acknowledgement
        self.tasks: set[asyncio.Task[None]] = set()
        self.waiter: asyncio.Future[None] | None = None

    @property
    def busy(self) -> bool:
        """True while any work of this partition is in flight."""
        return bool(self.running or self.acks)

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
