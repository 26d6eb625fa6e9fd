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
            self._loop.call_soon_threadsafe(self.run_now)

    def run_now(self) -> None:
        """Run what is queued, here and now (on the loop thread): the loop does it by
        itself; a caller that cannot give the loop a turn calls it."""
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
        """Wait (on the loop) until each of ``deliveries`` is settled; raise the first
        one's error in list order, as awaiting each in turn would."""
        settled: asyncio.Future[BaseException | None] = self._loop.create_future()
        self.when_settled(deliveries, partial(_resolve, settled))
        error = await settled
        if error is not None:
            raise error

    def settled(self, delivery: Delivery) -> None:
        """A producer's ``on_settled`` (any thread): the loop runs the delivery's waiter."""
        self.call(Delivery.run_waiter, delivery)

    def when_settled(
        self, deliveries: list[Delivery], done: Callable[[BaseException | None], None]
    ) -> None:
        """Call ``done(error)`` on the loop once each of ``deliveries`` is settled, with the
        first one's error (None if all were acknowledged): what :meth:`acked` tells, with
        no task and no future. Called now if they are all settled already.

        A delivery of a producer whose ``on_settled`` is :meth:`settled` is watched with
        no lock (its waiter is set and run on the loop thread, see ``Delivery.watch``);
        any other gets a done-callback that comes here through :meth:`call`. Loop thread
        only.
        """
        if len(deliveries) == 1:  # the usual case (a handler publishes one event)
            self._when_one_settled(deliveries[0], done)
            return
        pending = [d for d in deliveries if not d.done()]
        if not pending:
            done(first_error(deliveries))
            return
        one = _AllSettled(deliveries, len(pending), done).one
        report: Callable[[Delivery], None] | None = None
        for delivery in pending:
            if not delivery.watch(one):
                report = report or partial(self.call, one)
                delivery.add_done_callback(report)

    def _when_one_settled(
        self, delivery: Delivery, done: Callable[[BaseException | None], None]
    ) -> None:
        """:meth:`when_settled` for one delivery: no list, no counter."""
        if delivery.done():
            done(delivery.exception())
            return
        waiter = partial(_report_one, done)
        if not delivery.watch(waiter):
            delivery.add_done_callback(partial(self.call, waiter))


def _report_one(done: Callable[[BaseException | None], None], delivery: Delivery) -> None:
    done(delivery.exception())


class _AllSettled:
    """Counts a list's deliveries down; calls ``done(first error or None)`` after the last."""

    __slots__ = ("_deliveries", "_done", "_left")

    def __init__(
        self, deliveries: list[Delivery], left: int, done: Callable[[BaseException | None], None]
    ) -> None:
        self._deliveries = deliveries
        self._left = left
        self._done = done

    def one(self, _delivery: Delivery) -> None:
        self._left -= 1
        if not self._left:
            self._done(first_error(self._deliveries))


def first_error(deliveries: list[Delivery]) -> BaseException | None:
    """The error of the first failed delivery in list order (what :meth:`Handoff.acked`
    raises), or None; every delivery must be settled."""
    for delivery in deliveries:
        error = delivery.exception()
        if error is not None:
            return error
    return None


def _resolve(future: asyncio.Future[BaseException | None], error: BaseException | None) -> None:
    if not future.done():  # cancelled meanwhile (a revoke): nobody waits
        future.set_result(error)
