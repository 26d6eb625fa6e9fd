"""The in-memory dedupe store: a bounded window of recent keys per (source) partition.

Cheap (a set lookup per event) and it survives nothing: a restart, or a rebalance that
moves the partition to another worker, forgets the window, so a duplicate arriving after
that runs the handler again. It catches what at-least-once delivers most often: the
events re-read after a rebalance or a retry, within the last ``window`` keys of a
partition. Use Redis or the PostgreSQL inbox when duplicates must be caught across
restarts.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from streamkit import envelope as env

if TYPE_CHECKING:
    from streamkit.handlers.context import Context
    from streamkit.handlers.middleware import CallNext, CallNextSync
    from streamkit.idempotency.base import Hold

__all__ = ["DEFAULT_WINDOW", "MemoryStore"]

#: Keys remembered per partition (source topic or retry tier): about 1 MB per 10,000.
DEFAULT_WINDOW = 10_000


class _Window:
    __slots__ = ("keys", "order")

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.order: deque[str] = deque()


class MemoryStore:
    """The last ``window`` handled keys of each partition, in this process only."""

    name = "memory"

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self.window = window
        self._windows: dict[tuple[str, int], _Window] = {}

    async def run_once(self, ctx: Context, key: str, call: CallNext, hold: Hold) -> bool:
        """Run ``call`` unless ``key`` is in this partition's window (never unavailable)."""
        win = self._window(ctx)
        if key in win.keys:
            return False
        await call()  # a failure raises: the key stays out, so the retry runs again
        self._remember(win, key)
        return True

    def run_once_sync(self, ctx: Context, key: str, call: CallNextSync) -> bool:
        """:meth:`run_once` for a plain sync handler: no I/O, so no task and no hold."""
        win = self._window(ctx)
        if key in win.keys:
            return False
        call()
        self._remember(win, key)
        return True

    def _window(self, ctx: Context) -> _Window:
        where = _source_partition(ctx)
        win = self._windows.get(where)
        if win is None:
            win = self._windows[where] = _Window()
        return win

    def _remember(self, win: _Window, key: str) -> None:
        win.keys.add(key)
        win.order.append(key)
        if len(win.order) > self.window:
            win.keys.discard(win.order.popleft())

    def forget(self) -> None:
        """Drop every window (what a restart does)."""
        self._windows.clear()


def _source_partition(ctx: Context) -> tuple[str, int]:
    """The partition the event came from: a retry-tier record counts in its source's window
    (a redelivered source event then meets the key its successful retry left)."""
    if ctx.attempt > 1:
        topic = env.header_str(ctx.headers, env.H_ORIGINAL_TOPIC)
        partition = env.header_int(ctx.headers, env.H_ORIGINAL_PARTITION)
        if topic is not None and partition is not None:
            return topic, partition
    return ctx.topic, ctx.partition
