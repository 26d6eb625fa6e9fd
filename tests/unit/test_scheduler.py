"""Scheduler bookkeeping that is hard to reach through a broker."""

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from streamkit import Context, Router, TransientDependencyError
from streamkit.consumer.job import Job
from streamkit.consumer.pipeline import Pipeline, build_pipeline
from streamkit.consumer.scheduler import CHECK_EVERY, RUN_LENGTH
from streamkit.consumer.state import drain
from streamkit.envelope import encode_envelope
from streamkit.observability.metrics import Metrics
from streamkit.observability.stats import BatchStats
from streamkit.retry.topics import tier_map


class Msg:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return b"k%d" % self._p

    def headers(self) -> Any:
        return []

    def value(self) -> bytes:
        return b"{}"

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)

    def error(self) -> None:
        return None


def _pipeline(
    router: Router, *, max_inflight: int, publisher: Any = None, tiers: Any = None
) -> Pipeline:
    """The worker's pipeline without Kafka: no publishes unless given a publisher."""
    return build_pipeline(
        router,
        publisher,
        group="g",
        tiers=tiers or tier_map(["t"], "g", 0, router.topic_names),
        stats=BatchStats(Metrics(), "g"),
        threads=ThreadPoolExecutor(1),
        max_inflight=max_inflight,
    )


def test_a_revoked_waiting_job_does_not_strand_the_next_one() -> None:
    router = Router()
    ran: list[int] = []

    @router.handler("e")
    async def on(data: dict[str, Any]) -> None:
        ran.append(1)

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=1)
        live, gone = pipeline.commits.assign([("t", 0), ("t", 1)])
        scheduler = pipeline.dispatcher.scheduler
        spec = router.get("e")
        assert spec is not None
        jobs = [
            Job(Msg(1, 0), gone, spec, {}, None, "e", 1),
            Job(Msg(0, 0), live, spec, {}, None, "e", 1),
        ]
        for job in jobs:
            job.state.begin(job.msg)
        pipeline.commits.detach([("t", 1)])  # revoked while its job waits
        # One task is running (max_inflight=1); behind it wait a job of a partition
        # revoked meanwhile, then a job of a live partition.
        scheduler.running = 1
        scheduler._per_handler[spec] = 1
        scheduler._waiting.extend(jobs)
        scheduler.task_ended(jobs[1])  # a job of the handler, as its task would
        assert not scheduler._waiting
        await asyncio.wait(live.tasks, timeout=5)
        assert ran == [1]
        assert live.tracker.position == 1
        assert scheduler.running == 0
        assert pipeline.load.buffered == 0
        assert not gone.busy

    asyncio.run(scenario())


class _Event(Msg):
    def value(self) -> bytes:
        return encode_envelope("e", {})


def test_a_finished_task_leaves_its_partition_task_set_and_running_count() -> None:
    # The task takes itself out of state.tasks (no done-callback): were that missing,
    # every async event would leave its task behind, a leak that grows with traffic.
    router = Router()
    gate = asyncio.Event()
    ran: list[int] = []

    @router.handler("e", ordering="unordered")
    async def on(data: dict[str, Any]) -> None:
        await gate.wait()
        ran.append(1)

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        for offset in range(20):
            pipeline.dispatcher.take(_Event(0, offset), state)  # type: ignore[arg-type]
        await asyncio.sleep(0)  # the tasks start and wait on the gate
        assert len(state.tasks) == 20 and pipeline.dispatcher.running == 20
        gate.set()
        await asyncio.wait(list(state.tasks), timeout=5)
        assert len(ran) == 20
        assert state.tasks == {} and pipeline.dispatcher.running == 0
        assert state.tracker.position == 20

    asyncio.run(scenario())


def test_a_handler_cap_holds_its_runs_to_max_inflight_and_lets_others_pass() -> None:
    router = Router()
    gate = asyncio.Event()
    running, peak, other = [0], [0], []

    @router.handler("e", ordering="unordered", max_inflight=2)
    async def capped(data: dict[str, Any]) -> None:
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        await gate.wait()
        running[0] -= 1

    @router.handler("o", ordering="unordered")
    async def free(data: dict[str, Any]) -> None:
        other.append(1)

    class _Other(Msg):
        def value(self) -> bytes:
            return encode_envelope("o", {})

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        for offset in range(10):
            pipeline.dispatcher.take(_Event(0, offset), state)  # type: ignore[arg-type]
        pipeline.dispatcher.take(_Other(0, 10), state)  # type: ignore[arg-type]
        for _ in range(5):
            await asyncio.sleep(0)
        assert (running[0], peak[0], other) == (2, 2, [1])  # capped at 2; the other ran
        gate.set()
        while state.tasks:
            await asyncio.wait(list(state.tasks), timeout=5)
        assert peak[0] == 2 and state.tracker.position == 11
        assert pipeline.dispatcher.scheduler._per_handler == {router.get("e"): 0}

    asyncio.run(scenario())


def test_a_task_cancelled_before_it_ever_ran_gives_back_what_it_held() -> None:
    # A drain with bound 0 (a lost partition, an aborted transaction) can cancel a task
    # created in the same loop pass: its body, and so its clean-up, never runs. The drain
    # undoes its bookkeeping, or the running count, the load and its lane stay taken --
    # and a handler capped at one would never run again.
    router = Router()
    ran: list[int] = []

    @router.handler("e", max_inflight=1)
    async def on(data: dict[str, Any]) -> None:
        ran.append(1)

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        pipeline.dispatcher.take(_Event(0, 0), state)  # type: ignore[arg-type]
        (task,) = state.tasks
        task.cancel()  # before its first step
        await drain([state], 0)
        assert ran == [] and state.tasks == {}
        assert (pipeline.dispatcher.running, state.running, pipeline.load.buffered) == (0, 0, 0)
        pipeline.dispatcher.take(_Event(0, 1), state)  # same key: its lane is free again
        await asyncio.wait(list(state.tasks), timeout=5)
        assert ran == [1]

    asyncio.run(scenario())


REQUEST: "contextvars.ContextVar[int | None]" = contextvars.ContextVar("request", default=None)


def _run_key(router: Router, events: int) -> tuple[Pipeline, Any]:
    """``events`` events of one key (one lane) through the dispatcher, run to the end."""

    async def scenario() -> tuple[Pipeline, Any]:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        for offset in range(events):
            pipeline.dispatcher.take(_Event(0, offset), state)  # type: ignore[arg-type]
        while state.tasks:
            await asyncio.wait(list(state.tasks), timeout=5)
        return pipeline, state

    return asyncio.run(scenario())


def test_a_handler_that_sets_a_contextvar_does_not_pass_it_to_the_next_event() -> None:
    # What a job sets stays with it: the next job of the key is launched from this job's
    # settling, and used to copy this task's context (structlog's bind_contextvars, say).
    router = Router()
    before: list[int | None] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        before.append(REQUEST.get())
        REQUEST.set(ctx.offset)
        await asyncio.sleep(0)

    _, state = _run_key(router, 4)
    assert before == [None, None, None, None]  # no event saw another's
    assert state.tracker.position == 4


class _Sync(Msg):
    def value(self) -> bytes:
        return encode_envelope("s", {})


class _Headed(_Sync):  # named by its event_type header: the dispatcher's hot path
    def headers(self) -> Any:
        return [("event_type", b"s")]


class _Elsewhere(_Headed):  # the same partition number, of a topic not assigned here
    def topic(self) -> str:
        return "u"


class _Failed(Msg):  # an error in place of a record
    def error(self) -> Any:
        return "broken"


def test_a_batch_moves_each_partition_past_its_last_record_once_done_on_the_spot() -> None:
    # Records done on the spot take no tracker step of their own: the batch moves each
    # partition's position once, past its last record taken. Were that step missing, a
    # commit would stay behind (read again after a restart) or, past a record still in
    # flight, would skip it.
    router = Router()
    ran: list[int] = []

    @router.handler("s")
    def on(data: dict[str, Any]) -> None:
        ran.append(1)

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=10)
        first, second = pipeline.commits.assign([("t", 0), ("t", 1)])
        errors: list[Any] = []
        batch = [_Headed(0, 0), _Headed(1, 7), _Failed(0, 50), _Headed(0, 1), _Headed(2, 3)]
        batch += [_Headed(0, 2), _Elsewhere(0, 9)]  # a partition's state is looked up per run
        pipeline.dispatcher.take_batch(batch, pipeline.commits.states, errors.append)  # type: ignore[arg-type]
        assert (first.tracker.position, second.tracker.position) == (3, 8)
        assert (first.tracker.pending, second.tracker.pending) == (0, 0)
        assert errors == ["broken"]
        assert ran == [1, 1, 1, 1]  # partition 2, and topic u, are not assigned here: skipped
        assert len(pipeline.stats.ok_times[("t", "s")]) == 4  # counted ok, once each

    asyncio.run(scenario())


def test_a_job_run_with_no_wrapper_leaves_nothing_it_set_to_the_jobs_after_it() -> None:
    # Past the first checks, a task awaits its jobs as they are, in its own contextvars:
    # once one of them sets a variable, those differ from the next job's, which then
    # runs in its own (InContext) and sees nothing of it.
    router = Router()
    before: list[int | None] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        before.append(REQUEST.get())
        if ctx.offset == 2 * CHECK_EVERY:  # a job run with no wrapper (see _run_of)
            REQUEST.set(ctx.offset)
        await asyncio.sleep(0)

    events = 3 * CHECK_EVERY
    _, state = _run_key(router, events)
    assert before == [None] * events
    assert state.tracker.position == events


def test_a_handler_that_stops_waiting_runs_a_bounded_number_of_jobs_per_loop_step() -> None:
    # Jobs awaited with no wrapper are not asked whether they gave the loop a turn: a
    # handler that waited for the first jobs, then stops, runs at most CHECK_EVERY jobs
    # back to back before a check finds it out and the next job gets a task of its own.
    router = Router()
    ticks = [0]
    entered: list[int] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        entered.append(ticks[0])
        if ctx.offset < 2:
            await asyncio.sleep(0)

    async def ticker() -> None:
        while True:  # one tick per loop step
            ticks[0] += 1
            await asyncio.sleep(0)

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        tick = asyncio.create_task(ticker())
        for offset in range(RUN_LENGTH):
            pipeline.dispatcher.take(_Event(0, offset), state)  # type: ignore[arg-type]
        while state.tracker.position < RUN_LENGTH:
            await asyncio.wait_for(asyncio.sleep(0), 5)
        tick.cancel()

    asyncio.run(asyncio.wait_for(scenario(), 5))
    per_step = [entered.count(t) for t in set(entered)]
    assert len(entered) == RUN_LENGTH
    assert max(per_step) <= CHECK_EVERY


def test_a_queued_sync_job_does_not_see_what_the_async_job_before_it_set() -> None:
    # A sync job queued behind an async one of its key runs in a loop callback that the
    # async job's settling schedules: in a context of its own, not a copy of that task's.
    router = Router()
    seen: list[int | None] = []

    @router.handler("e")
    async def first(data: dict[str, Any], ctx: Context) -> None:
        REQUEST.set(ctx.offset)
        await asyncio.sleep(0)

    @router.handler("s")
    def then(data: dict[str, Any]) -> None:
        seen.append(REQUEST.get())

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        pipeline.dispatcher.take(_Event(0, 0), state)  # type: ignore[arg-type]
        pipeline.dispatcher.take(_Sync(0, 1), state)  # type: ignore[arg-type]  same key
        while state.tracker.position < 2:
            await asyncio.wait_for(asyncio.sleep(0.001), 5)

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert seen == [None]


def test_a_job_starts_from_the_context_of_whoever_took_its_record() -> None:
    # TestBroker.publish in a test that set a tenant id, or the worker's poll loop: the
    # handler starts from a copy of that caller's contextvars, however late it runs.
    router = Router()
    seen: list[tuple[str, int | None]] = []

    @router.handler("e")
    async def first(data: dict[str, Any], ctx: Context) -> None:
        seen.append(("async", REQUEST.get()))
        REQUEST.set(-1)  # its own: not for the event behind it
        await asyncio.sleep(0)

    @router.handler("s")
    def then(data: dict[str, Any]) -> None:
        seen.append(("sync", REQUEST.get()))

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        REQUEST.set(7)  # the caller's, as a test body's
        pipeline.dispatcher.take(_Event(0, 0), state)  # type: ignore[arg-type]
        pipeline.dispatcher.take(_Sync(0, 1), state)  # type: ignore[arg-type]  same key
        while state.tracker.position < 2:
            await asyncio.sleep(0.001)

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert seen == [("async", 7), ("sync", 7)]


def test_the_jobs_of_a_busy_lane_run_one_after_another_in_one_task() -> None:
    # The task of a job that ends takes the next job of its lane (no task per event),
    # each in its own contextvars (the test above), and hands over to a fresh task after
    # RUN_LENGTH jobs in a row.
    router = Router()
    tasks: list[asyncio.Task[Any] | None] = []

    @router.handler("e")
    async def on(data: dict[str, Any]) -> None:
        tasks.append(asyncio.current_task())
        await asyncio.sleep(0)

    events = RUN_LENGTH + 3
    pipeline, state = _run_key(router, events)
    assert state.tracker.position == events
    assert len({id(t) for t in tasks[: RUN_LENGTH + 1]}) == 1  # the first and 64 handed on
    assert tasks[RUN_LENGTH + 1] is not tasks[0]  # then a task of its own
    assert pipeline.dispatcher.running == 0 and state.tasks == {}


def test_a_handler_that_never_awaits_does_not_keep_the_loop_from_others() -> None:
    # A handed-over job starts within the same loop step: after a job that never gave
    # the loop a turn, the next one gets a task of its own instead (a turn in between),
    # as with a task per event.
    router = Router()
    done: list[int] = []
    turns: list[int] = []

    @router.handler("e")
    async def on(data: dict[str, Any]) -> None:
        done.append(1)

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        for offset in range(3 * RUN_LENGTH):
            pipeline.dispatcher.take(_Event(0, offset), state)  # type: ignore[arg-type]
        asyncio.get_running_loop().call_soon(lambda: turns.append(len(done)))
        while state.tracker.position < 3 * RUN_LENGTH:
            await asyncio.wait_for(asyncio.sleep(0), 5)

    asyncio.run(asyncio.wait_for(scenario(), 5))
    assert turns == [1]


def test_a_handed_over_job_cancelled_by_a_drain_is_not_done_and_holds_nothing() -> None:
    # Revoked while the second job of a lane runs in the first one's task: that task is
    # cancelled, the job is not done (not committed: the next owner handles it), and the
    # running count, the partition's tasks and the load are given back.
    router = Router()
    gate = asyncio.Event()
    entered: list[int] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        entered.append(ctx.offset)
        await asyncio.sleep(0)  # gives the loop a turn: the next job of the key is handed on
        if ctx.offset == 1:
            await gate.wait()  # never set: only the drain ends it

    async def scenario() -> None:
        pipeline = _pipeline(router, max_inflight=100)
        (state,) = pipeline.commits.assign([("t", 0)])
        for offset in range(3):
            pipeline.dispatcher.take(_Event(0, offset), state)  # type: ignore[arg-type]
        (first,) = state.tasks
        while entered != [0, 1]:
            await asyncio.wait_for(asyncio.sleep(0), 5)
        assert list(state.tasks) == [first]  # the second job runs in the first one's task
        abandoned = await asyncio.wait_for(drain([state], 0), 5)
        assert abandoned == [state] and first.cancelled()
        assert state.tracker.position == 1  # offset 0 done; 1 was cut short, 2 never ran
        assert (pipeline.dispatcher.running, state.running, state.tasks) == (0, 0, {})

    asyncio.run(scenario())


async def _pipeline_mem(router: Router, *, max_inflight: int, partitions: int = 1) -> Any:
    """The worker's pipeline over TestBroker's in-memory topics: failures and holds work."""
    from streamkit.testing import TestBroker

    broker = TestBroker(router, topic="t")
    pipeline = _pipeline(
        router, max_inflight=max_inflight, publisher=broker._memory, tiers=broker._tiers
    )
    pipeline.commits.attach(broker._memory, asyncio.get_running_loop())
    return pipeline, pipeline.commits.assign([("t", p) for p in range(partitions)])


class _Keyed(_Event):
    def key(self) -> bytes:
        return b"k%d" % self._o  # a key per offset


@pytest.mark.parametrize("caps", [(1, None), (100, 1)], ids=["max_inflight", "handler cap"])
def test_a_held_job_handed_back_to_the_task_made_for_it_runs_again(
    caps: tuple[int, int | None],
) -> None:
    # Found in review: the job held on a dependency went back to its own task (the one
    # made for it, in its context) once room freed, and entering its context a second
    # time failed: the job was lost, its lane and a slot of max_inflight kept for good.
    cap, handler_cap = caps
    router = Router(topics=["t"])
    runs: list[int] = []

    @router.handler("e", max_inflight=handler_cap)
    async def on(data: dict[str, Any], ctx: Context) -> None:
        runs.append(ctx.offset)
        if runs == [0]:
            raise TransientDependencyError("down", dependency="d")
        if ctx.offset == 1:
            await asyncio.sleep(0.3)  # the hold's 0.1 s retry of offset 0 waits for room

    async def scenario() -> None:
        pipeline, (state,) = await _pipeline_mem(router, max_inflight=cap)
        for offset in range(2):
            pipeline.dispatcher.take(_Keyed(0, offset), state)
        while state.tracker.position < 2:
            await asyncio.wait_for(asyncio.sleep(0.01), 5)
        assert runs == [0, 1, 0]
        assert (pipeline.dispatcher.running, state.running, state.tasks) == (0, 0, {})

    asyncio.run(asyncio.wait_for(scenario(), 10))


def test_a_task_whose_handler_swallowed_its_cancellation_takes_no_more_jobs() -> None:
    # Found in review: a handler that swallows the drain's CancelledError returns, and its
    # task went on with a waiting job of a live partition, cancelling() still 1 (a drain
    # with bound 0 then waited for that job). It gets a task of its own instead.
    router = Router(topics=["t"])
    seen: list[tuple[int, int]] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        if ctx.partition == 0:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                return  # swallowed: bad practice, but handler code
        task = asyncio.current_task()
        assert task is not None
        seen.append((ctx.partition, task.cancelling()))
        await asyncio.sleep(0.3)

    async def scenario() -> None:
        pipeline, (first, second) = await _pipeline_mem(router, max_inflight=1, partitions=2)
        pipeline.dispatcher.take(_Event(0, 0), first)
        pipeline.dispatcher.take(_Event(1, 0), second)  # waits for room
        await asyncio.sleep(0.05)
        pipeline.commits.detach([("t", 0)])
        started = time.monotonic()
        await drain([first], 0)
        assert time.monotonic() - started < 0.2  # did not wait for the other's job
        while second.tracker.position < 1:
            await asyncio.wait_for(asyncio.sleep(0.01), 5)
        assert seen == [(1, 0)]

    asyncio.run(asyncio.wait_for(scenario(), 10))
