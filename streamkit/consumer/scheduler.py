"""Scheduling: ordering lanes, the concurrency caps, and the tasks handlers run in.

A job whose lane is free is handed to ``start`` (the dispatcher decides what it needs);
jobs that run as tasks go through :meth:`Scheduler.launch_or_wait`, which holds them back
while ``max_inflight`` tasks (or the handler's own cap) are running.

A task that ends its job takes over the job launched as it ends (the next of its lane,
or one that waited for room) instead of a new task being made for it: 2.4 against 3.5 µs
of CPU per job in isolation (the task's creation, scheduling and registration). The job
runs in its own contextvars all the same: in the task's while they equal the job's, else
in an :class:`~streamkit.consumer.incontext.InContext` (see :meth:`Scheduler._run_of`).
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from functools import partial
from typing import Any

from streamkit.consumer.incontext import InContext
from streamkit.consumer.job import Job
from streamkit.consumer.lanes import Lanes
from streamkit.handlers.registry import HandlerSpec

Runner = Callable[[Job], Coroutine[Any, Any, None]]
# Jobs one task runs in a row before the next gets a task of its own (see _work).
RUN_LENGTH = 64
# A task asks one job in this many whether it gave the loop a turn (see _run_of).
CHECK_EVERY = 16


class Scheduler:
    """Lanes plus bounded concurrency for one worker."""

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        max_inflight: int,
        start: Callable[[Job], None],
        runner: Runner,
        abandon: Callable[[Job], None],
    ) -> None:
        self._loop = loop
        self._max_inflight = max_inflight
        self._runner = runner  # the coroutine a launched job runs; it calls task_ended
        self._abandon = abandon  # a waiting job whose partition was revoked
        self._lanes: Lanes[Job] = Lanes(start)
        self._per_handler: dict[HandlerSpec, int] = {}  # running tasks per capped handler
        self._waiting: deque[Job] = deque()  # lane free, but no capacity to run yet
        self.running = 0  # handler tasks running now (bounded by max_inflight)
        # A task ending its job takes the first job launched meanwhile (see job_ending).
        self._taking = False
        self._handed: Job | None = None

    def submit(self, job: Job) -> None:
        """Queue ``job`` behind its lane; ``start`` is called once the lane is free."""
        self._lanes.submit(job.lane, job)

    def release_lane(self, lane: Hashable | None) -> None:
        """The job of ``lane`` is through: the next one of the lane may start."""
        self._lanes.release(lane)

    def occupy(self, lane: Hashable | None) -> None:
        """Take ``lane`` for a job that ran without it (see :meth:`Lanes.occupy`)."""
        self._lanes.occupy(lane)

    def launch_or_wait(self, job: Job) -> None:
        """Run ``job`` as a task now if there is room, else when a task ends."""
        if self._has_room(job.spec):
            self._launch(job)
        else:
            self._waiting.append(job)

    def job_ending(self, job: Job) -> None:
        """:meth:`task_ended` for a job that ran to its end (not cancelled): the first job
        launched from here until the runner returns runs next in the same task. The
        runner calls it after its last ``await``: nothing else runs meanwhile."""
        self._taking = True
        self.task_ended(job)

    def task_ended(self, job: Job) -> None:
        """Called by ``job``'s task as it ends, whichever way: room for a waiting job.

        The task leaves its partition's task map here. One cancelled before it ever ran
        stays there, done: ``state.drain`` then calls :meth:`_never_ran` for it.
        """
        job.state.untrack()
        self.running -= 1
        if job.spec.max_inflight is not None:
            self._per_handler[job.spec] -= 1
        # Keep going until a job really starts: a waiting job of a revoked partition is
        # abandoned instead, and must not leave the others waiting with nothing running.
        while self._waiting and self.running < self._max_inflight:
            waiting = self._next_waiting()
            if waiting is None or self._launch(waiting):
                return

    def _has_room(self, spec: HandlerSpec) -> bool:
        if self.running >= self._max_inflight:
            return False
        return spec.max_inflight is None or self._per_handler.get(spec, 0) < spec.max_inflight

    def _launch(self, job: Job) -> bool:
        """Start ``job``'s task; False if its partition was revoked while it waited."""
        if job.state.revoked:
            self._abandon(job)
            return False
        self.running += 1
        if job.spec.max_inflight is not None:  # only a capped handler is counted
            self._per_handler[job.spec] = self._per_handler.get(job.spec, 0) + 1
        if self._taking:  # a task is ending its job: it runs this one next
            self._taking = False
            self._handed = job
        else:
            self._spawn(job)
        return True

    def _spawn(self, job: Job) -> None:
        # No done-callback takes it out again: that is one more loop callback per event
        # (of four); the task does it itself, in task_ended.
        # In a copy of the job's own context (see Job.context), not that of the caller (it
        # may be the task of the job before it, with what that job's handler set), nor the
        # job's own object: later jobs run in the task's while it equals theirs (_run_of).
        task = self._loop.create_task(self._work(job), context=job.context.copy())
        job.state.track(task, partial(self._never_ran, job))

    async def _work(self, job: Job) -> None:
        """A task's body: ``job``, then each job handed over to it as one ends.

        Only after a job that gave the loop a turn, and at most :data:`RUN_LENGTH` in a
        row: jobs that never wait would otherwise run back to back in one loop step (a
        fresh task gives the loop its turn between them, as a task per job did). Nor in
        a task whose cancellation a handler swallowed: it should end, not go on.
        """
        task: Any = asyncio.current_task()
        run, watched = self._run_of(job, checked=False)
        del job  # not kept alive by the task for as long as it runs
        for left in range(RUN_LENGTH, -1, -1):
            try:
                await run
            except BaseException:  # cancelled; or a bug of ours, past the job's end
                self._spawn_handed()
                raise
            handed = self._take()
            if handed is None:
                return
            gave_turn = watched is None or watched.suspended  # None: see _run_of
            if not (left and gave_turn) or task.cancelling():
                self._spawn(handed)
                return
            handed.state.track(task, partial(self._never_ran, handed))
            run, watched = self._run_of(handed, checked=left % CHECK_EVERY != 0)

    def _run_of(self, job: Job, checked: bool) -> tuple[Awaitable[None], InContext | None]:
        """What the task awaits to run ``job``, and the :class:`InContext` that tells
        whether it gave the loop a turn (None: not asked).

        Awaited as it is, with no wrapper (~2 of 18 µs of CPU per job in scenario 2 of
        the benchmark), when the task's contextvars equal the job's -- nothing an earlier
        job set is left in them -- and ``checked``: the task's jobs gave the loop a turn
        so far, and one job in :data:`CHECK_EVERY` is asked again. Else in an InContext
        (in the job's own context where they differ), which tells. So a handler that
        stops waiting runs at most that many jobs back to back before the task ends.
        """
        coro = self._runner(job)
        if contextvars.copy_context() != job.context:  # O(1) while nobody set anything
            run = InContext(coro, job.context)
            return run, run
        if checked:
            return coro, None
        run = InContext(coro)
        return run, run

    def _take(self) -> Job | None:
        """The job handed over as the last one ended, if any (and no more of them)."""
        self._taking = False
        handed, self._handed = self._handed, None
        return handed

    def _spawn_handed(self) -> None:
        handed = self._take()
        if handed is not None:
            self._spawn(handed)

    def _never_ran(self, job: Job) -> None:
        """``job``'s task was cancelled before its first step: what its end would do."""
        self.task_ended(job)
        self._abandon(job)

    def _next_waiting(self) -> Job | None:
        """The first waiting job with room (a per-handler limit may hold the head back)."""
        waiting = self._waiting
        if self._has_room(waiting[0].spec):
            return waiting.popleft()
        for job in waiting:
            if self._has_room(job.spec):
                waiting.remove(job)
                return job
        return None
