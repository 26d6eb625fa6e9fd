"""Await a coroutine inside a contextvars context of its own, without a task for it.

A task made with ``create_task(coro, context=ctx)`` runs each step of ``coro`` as
``ctx.run(coro.send, value)``. :class:`InContext` does the same from inside another
task, so that task can run one job after another (see ``Scheduler``), each in the job's
own contextvars, as a task per job would: what a handler sets stays with its event.
Futures the coroutine waits on pass through to the task untouched; what the task throws
in (cancellation) is thrown into the coroutine, in its context.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine, Generator
from typing import Any


class InContext:
    """``await InContext(coro, context)``: ``await coro`` with every step in ``context``.

    ``context`` None: the awaiting task's own (it must not be entered twice: a job in the
    context of the task that runs it goes without one). ``suspended`` tells, once
    awaited, whether ``coro`` ever gave the loop a turn.
    """

    __slots__ = ("_context", "_coro", "suspended")

    def __init__(
        self, coro: Coroutine[Any, Any, Any], context: contextvars.Context | None = None
    ) -> None:
        self._coro = coro
        self._context = context
        self.suspended = False

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, context = self._coro, self._context
        run = None if context is None else context.run
        send: Any = coro.send
        step, arg = send, None
        while True:
            try:
                yielded = step(arg) if run is None else run(step, arg)
            except StopIteration as done:
                return done.value
            self.suspended = True
            try:
                arg = yield yielded
                step = send
            except GeneratorExit:  # the task is being closed unfinished: so is the job
                coro.close() if run is None else run(coro.close)
                raise
            except BaseException as exc:  # thrown into the task (cancelled): pass it on
                step, arg = coro.throw, exc
