"""Ordering lanes: jobs sharing a lane run one at a time, in the order submitted.

A lane is ``(topic, partition, key)`` for key ordering, ``(topic, partition)`` for strict
partition order, or None (no ordering). Different lanes run concurrently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

J = TypeVar("J")


class Lanes(Generic[J]):
    """Queues of jobs per lane; ``start`` is called for a job once its lane is free."""

    __slots__ = ("_again", "_busy", "_releasing", "_start")

    def __init__(self, start: Callable[[J], None]) -> None:
        self._busy: dict[Hashable, deque[J]] = {}
        self._start = start
        self._releasing = False
        self._again: list[Hashable] = []  # lanes released from within a start()

    def submit(self, lane: Hashable | None, job: J) -> None:
        """Start ``job`` now if its lane is idle, else queue it behind the lane's work."""
        if lane is None:
            self._start(job)
            return
        queue = self._busy.get(lane)
        if queue is None:
            self._busy[lane] = deque()
            self._start(job)
        else:
            queue.append(job)

    def occupy(self, lane: Hashable | None) -> None:
        """Mark ``lane`` busy without starting anything (no-op if it is busy already):
        a job that ran without its lane keeps later jobs of the lane behind it."""
        if lane is not None:
            self._busy.setdefault(lane, deque())

    def release(self, lane: Hashable | None) -> None:
        """The running job of ``lane`` finished: start the next one, or free the lane.

        A started job may release its lane at once (its partition was revoked): that
        release is queued and done by this loop, not by recursion -- a lane of thousands
        of abandoned jobs must not exhaust the stack.
        """
        if lane is None:
            return
        if self._releasing:
            self._again.append(lane)
            return
        queue = self._busy.get(lane)
        if not queue and not self._again:  # the usual case of few keys: nothing waits
            if queue is not None:
                del self._busy[lane]
            return
        self._releasing = True
        try:
            if queue:  # the usual case of a busy key: its next job, with no step between
                self._start(queue.popleft())
            elif queue is not None:
                del self._busy[lane]
            pending = self._again
            while pending:
                self._release_one(pending.pop())
        finally:
            self._releasing = False

    def _release_one(self, lane: Hashable) -> None:
        queue = self._busy.get(lane)
        if queue is None:
            return
        if queue:
            self._start(queue.popleft())
        else:
            del self._busy[lane]

    def __len__(self) -> int:
        return len(self._busy)
