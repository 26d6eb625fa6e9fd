"""Callbacks from the client's threads, run on the event loop with one wake-up per burst.

Delivery reports arrive on the producer's thread, hundreds per poll. ``call_soon_threadsafe``
per report writes to the loop's self-pipe each time and wakes the loop once per report;
here the first report of a burst schedules one drain, and the rest join its queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any

from streamkit.delivery import Delivery


class Handoff:
    """Runs ``fn(*args)`` on ``loop`` for calls made on any thread, in call order."""

    __slots__ = ("_items", "_lock", "_loop", "_scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` for the loop; thread-safe."""
        self._items.append((fn, args))  # deque.append is atomic
        with self._lock:
            if self._scheduled:
                return  # the drain already scheduled takes this one too
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left
            self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._lock:
            # Cleared before draining: a call made while we drain schedules a new drain
            # (at worst an empty one), so nothing queued is ever left behind.
            self._scheduled = False
        items = self._items
        while items:
            fn, args = items.popleft()
            try:
                fn(*args)
            except Exception as exc:  # as call_soon would: reported, the rest still run
                self._loop.call_exception_handler({"message": "handoff callback", "exception": exc})

    async def acked(self, deliveries: list[Delivery]) -> None:
        """Wait (on the loop) until each of ``deliveries`` is settled, in order; raise the
        first one's error, as ``await delivery`` would."""
        for delivery in deliveries:
            if not delivery.done():
                woken: asyncio.Future[None] = self._loop.create_future()
                # add_done_callback passes the delivery: _wake(woken, delivery) on the loop.
                delivery.add_done_callback(partial(self.call, _wake, woken))
                await woken
            error = delivery.exception()
            if error is not None:
                raise error


def _wake(future: asyncio.Future[None], _delivery: Delivery) -> None:
    if not future.done():  # cancelled meanwhile (a revoke): nothing to wake
        future.set_result(None)
