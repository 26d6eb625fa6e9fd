"""Per-partition offset tracking with out-of-order completion.

The committable position of a partition is the lowest offset not yet done (or one past the
last offset seen when everything is done). Events may finish in any order -- concurrency,
retries awaiting a broker ack -- and the position only moves over a contiguous done prefix,
so a commit never skips an event that is still in flight.
"""

from __future__ import annotations

from collections import deque


class OffsetTracker:
    """Offsets begun and done for one partition."""

    __slots__ = ("_done", "_high", "_pending", "committed", "last_timestamp")

    def __init__(self) -> None:
        self._pending: deque[tuple[int, int]] = deque()  # (offset, timestamp ms), in order
        self._done: set[int] = set()  # finished offsets behind a not-yet-finished one
        self._high = -1  # one past the highest offset seen; -1 before the first
        self.committed = -1  # last position committed to Kafka by this member
        self.last_timestamp = 0

    def begin(self, offset: int, timestamp: int) -> None:
        """Record that ``offset`` was handed to a handler (offsets arrive in order)."""
        self._pending.append((offset, timestamp))
        self._high = offset + 1
        self.last_timestamp = timestamp

    def read_to(self, offset: int, timestamp: int) -> None:
        """The records up to ``offset`` (its timestamp, ms) were taken: called once per
        poll batch for the last record of the partition, not once per record.

        The position is the lowest offset begun and not done, so a record done on the
        spot needs no entry of its own: one behind a record still in flight is passed
        over with the rest once that one finishes, and with nothing in flight the
        position is one past the last record taken -- what this sets.
        """
        self._high = offset + 1
        self.last_timestamp = timestamp

    def finish(self, offset: int) -> None:
        """Mark ``offset`` done; advances the position over any contiguous done prefix."""
        pending = self._pending
        if not pending or pending[0][0] != offset:
            self._done.add(offset)
            return
        pending.popleft()
        done = self._done
        while pending and pending[0][0] in done:
            done.discard(pending.popleft()[0])

    @property
    def position(self) -> int:
        """The offset to commit: the lowest not done; -1 when nothing was seen yet."""
        if self._pending:
            return self._pending[0][0]
        return self._high

    @property
    def seen(self) -> int:
        """One past the highest offset seen; -1 before the first."""
        return self._high

    @property
    def pending(self) -> int:
        """How many offsets are begun but not done."""
        return len(self._pending)

    @property
    def span(self) -> int:
        """How many offsets a restart would read again: from the oldest not done to the
        highest seen (0 when nothing is in flight). Flow control bounds it."""
        return self._high - self._pending[0][0] if self._pending else 0

    def oldest_pending_timestamp(self) -> int | None:
        """Timestamp (ms) of the oldest event not yet done, or None."""
        return self._pending[0][1] if self._pending else None

    def needs_commit(self) -> bool:
        """True when the position moved past what was last committed."""
        return self.position > self.committed
