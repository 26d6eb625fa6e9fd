"""Events held while a service they need is down: tried again in place, never dead-lettered.

A decoder, middleware or handler raising :class:`~streamkit.errors.TransientDependencyError`
(the schema registry, a dedupe store did not answer) does not fail its event. The event:

- keeps its ordering lane: later events of its key wait behind it, other keys flow;
- keeps its offset pending, so no commit goes past it;
- is not *in flight* for a drain: a revoke or shutdown does not wait for it, and since it
  stays uncommitted the partition's next owner handles it again;
- still counts as buffered, so backpressure bounds how many can wait (bounded memory).

Backoff belongs to the dependency, not to each event: one held event (the probe) is tried
per interval, from 0.1 s doubling to 5 s; once one gets through, every event waiting on
that dependency is tried at once. A registry that is down costs one call per interval,
not one per held event, and nothing spins.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Hashable

import structlog

from streamkit.consumer.job import EventStats, Job
from streamkit.errors import TransientDependencyError

log = structlog.get_logger("streamkit.consumer")

HOLD_BACKOFF = (0.1, 5.0)  # first and max seconds between tries of a waiting dependency
LOG_EVERY = 30.0  # at most one "still waiting" line per dependency in this many seconds


class _Dependency:
    """The events waiting on one service, and when it is tried next."""

    __slots__ = ("delay", "jobs", "logged", "name", "probe", "since", "timer")

    def __init__(self, name: str, delay: float) -> None:
        self.name = name
        self.delay = delay
        self.jobs: deque[Job] = deque()  # held, oldest first
        self.probe: Job | None = None  # the one being tried now
        self.timer: asyncio.TimerHandle | None = None
        self.since: float | None = None  # monotonic start of the current outage
        self.logged = -LOG_EVERY  # monotonic time of the last warning

    @property
    def held(self) -> int:
        return len(self.jobs) + (self.probe is not None)


class Hold:
    """Holds jobs whose dependency is down and hands them back with backoff.

    ``resume(job)`` runs a held job again (its lane is still taken); ``abandon(job)``
    frees the lane of a job whose partition was revoked (not done: redelivered);
    ``occupy(lane)`` takes a lane for a job that ran without one (the inline path).
    """

    def __init__(
        self,
        *,
        loop: asyncio.AbstractEventLoop,
        resume: Callable[[Job], None],
        abandon: Callable[[Job], None],
        occupy: Callable[[Hashable | None], None],
        stats: EventStats,
        backoff: tuple[float, float] = HOLD_BACKOFF,
    ) -> None:
        self._loop = loop
        self._resume = resume
        self._abandon = abandon
        self._occupy = occupy
        self._stats = stats
        self._backoff = backoff
        self._deps: dict[str, _Dependency] = {}

    @property
    def held(self) -> int:
        """Events waiting on a dependency now."""
        return sum(dep.held for dep in self._deps.values())

    def wait(self, job: Job, exc: TransientDependencyError) -> None:
        """Hold ``job`` (begun) until ``exc.dependency`` answers; its offset stays pending."""
        dep = self._deps.get(exc.dependency)
        if dep is None:
            dep = self._deps[exc.dependency] = _Dependency(exc.dependency, self._backoff[0])
        self._occupy(job.lane)  # later events of its key queue behind it
        job.state.set_aside()
        job.held = exc
        if dep.probe is job:  # the probe failed: it stays first in line
            dep.probe = None
            dep.jobs.appendleft(job)
        else:
            dep.jobs.append(job)
        self._stats.dependency_wait(dep.name, dep.held)
        self._warn(dep, exc)
        if dep.timer is None:
            dep.timer = self._loop.call_later(dep.delay, self._try_one, dep)

    def passed(self, job: Job) -> None:
        """A held ``job`` got through its dependency: everyone waiting on it goes now."""
        exc, job.held = job.held, None
        dep = self._deps.get(exc.dependency) if exc is not None else None
        if dep is None:
            return
        if dep.probe is job:
            dep.probe = None
        if dep.timer is not None:
            dep.timer.cancel()
            dep.timer = None
        dep.delay = self._backoff[0]
        if dep.since is not None:
            waited = round(time.monotonic() - dep.since, 3)
            log.info("dependency answers again", dependency=dep.name, waited_s=waited)
            dep.since = None
        jobs = list(dep.jobs)
        dep.jobs.clear()
        for held in jobs:
            self._hand_back(held)
        self._stats.dependency_wait(dep.name, dep.held, count=False)

    # -- internals ---------------------------------------------------------------------

    def _try_one(self, dep: _Dependency) -> None:
        """The interval is over: try the oldest held event (the probe) again."""
        dep.timer = None
        for gone in [j for j in dep.jobs if j.state.revoked]:  # bounded by backpressure
            dep.jobs.remove(gone)
            self._drop(gone)
        if not dep.jobs:
            self._stats.dependency_wait(dep.name, dep.held, count=False)
            return
        job = dep.jobs.popleft()
        dep.probe = job
        dep.delay = min(dep.delay * 2, self._backoff[1])
        # Armed now, not when the probe fails: a probe that never settles (revoked while
        # it ran) must not leave the others waiting forever.
        dep.timer = self._loop.call_later(dep.delay, self._try_one, dep)
        self._hand_back(job)

    def _hand_back(self, job: Job) -> None:
        job.state.take_back()
        self._resume(job)

    def _drop(self, job: Job) -> None:
        """Its partition was revoked: free the lane; the offset stays uncommitted."""
        job.held = None
        job.state.take_back()
        self._abandon(job)

    def _warn(self, dep: _Dependency, exc: TransientDependencyError) -> None:
        now = time.monotonic()
        if dep.since is None:
            dep.since = now
        if now - dep.logged < LOG_EVERY:
            return
        dep.logged = now
        log.warning(
            "waiting on a dependency; events held, offsets not committed",
            dependency=dep.name,
            held=dep.held,
            waiting_s=round(now - dep.since, 3),
            error=str(exc)[:200],
        )
