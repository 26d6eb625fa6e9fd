"""From a polled record to an outcome: route, decode, run the handler, settle the offset.

Runs on the event-loop thread only. Sync handlers run inline (no thread hop per event);
async handlers run as tasks, ordered by lane; failures go to a retry tier or the DLQ and
count as done only once the broker acknowledged that record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Executor
from typing import Any

import structlog

from streamkit import envelope as env
from streamkit.consumer.lanes import Lanes
from streamkit.consumer.parking import LotKey, ParkingLot, parked_headers, record_id
from streamkit.consumer.state import PartitionState
from streamkit.consumer.stats import BatchStats
from streamkit.errors import PermanentError, Skip, UnknownEventType
from streamkit.handlers.context import Context
from streamkit.handlers.registry import HandlerSpec, Router
from streamkit.handlers.signature import NOT_PARSED
from streamkit.observability.metrics import UNKNOWN_EVENT_TYPE
from streamkit.producer.producer import Delivery, Producer
from streamkit.retry.failures import FailurePlan, FailurePlanner, error_type

log = structlog.get_logger("streamkit.consumer")
DEBUG_LOG = logging.getLogger("streamkit.consumer")  # its level decides if DEBUG lines are built

REPUBLISH_BACKOFF = (0.5, 30.0)  # first and max seconds between failed retry/DLQ publishes


class Job:
    """One event on its way through a handler."""

    __slots__ = ("attempt", "event_id", "event_type", "lot", "msg", "payload", "spec", "state")

    def __init__(
        self,
        msg: Any,
        state: PartitionState,
        spec: HandlerSpec,
        payload: Any,
        event_id: str | None,
        event_type: str,
        attempt: int,
    ) -> None:
        self.msg = msg
        self.state = state
        self.spec = spec
        self.payload = payload
        self.event_id = event_id
        self.event_type = event_type
        self.attempt = attempt
        self.lot: LotKey | None = None  # set for keep-key-order handlers


class Dispatcher:
    """Turns records into handler calls and outcomes for one worker."""

    def __init__(
        self,
        *,
        router: Router,
        producer: Producer,
        planner: FailurePlanner,
        stats: BatchStats,
        threads: Executor,
        group: str,
        max_inflight: int,
        on_drained: Callable[[], None] = lambda: None,
        drained_below: int = 0,
    ) -> None:
        self.router = router
        self._on_drained = on_drained
        self._drained_below = drained_below
        self._max_inflight = max_inflight
        self._per_handler: dict[HandlerSpec, int] = {}  # running tasks per handler
        self._waiting: deque[Job] = deque()  # lane free, but no capacity to run yet
        self.running = 0  # handler tasks running now (bounded by max_inflight)
        self.acks_pending = 0  # retry/DLQ/parking publishes not yet acknowledged
        self.producer = producer
        self.planner = planner
        self.stats = stats
        self.group = group
        self._threads = threads
        self._loop = asyncio.get_running_loop()
        self._lanes: Lanes[Job] = Lanes(self._start)
        self._middleware = list(router.middleware)
        self.lot = ParkingLot()
        self.buffered = 0  # events taken from Kafka, not yet done (bounded by backpressure)

    @property
    def idle(self) -> bool:
        """Nothing started, queued or awaiting an acknowledgement."""
        return not (self.buffered or self.running or self.acks_pending)

    # -- intake ------------------------------------------------------------------------

    def handle(self, msg: Any, state: PartitionState) -> None:
        """Route, decode and run (or queue) one record."""
        attempt = (env.header_int(msg.headers(), env.H_ATTEMPT) or 1) if state.tier.n else 1
        try:
            spec, event_type, payload, event_id = self._decode(msg)
        except PermanentError as exc:
            self._bad_input(msg, state, exc, attempt)
            return
        if spec is None:  # unknown type, router set to skip them
            self.stats.count(msg.topic(), UNKNOWN_EVENT_TYPE, "skipped")
            self._done_now(msg, state)
            return
        if spec.plain and not state.running and not self._middleware:
            self._run_plain(msg, state, spec, payload, (event_id, event_type, attempt))
            return
        job = Job(msg, state, spec, payload, event_id, event_type, attempt)
        if spec.keep_key_order:
            job.lot = self.lot.lot_key(msg, state.tier)
        if spec.is_async or spec.blocking or state.running:
            state.tracker.begin(msg.offset(), msg.timestamp()[1])
            state.running += 1
            self.buffered += 1
            self._lanes.submit(self._lane(spec, msg), job)
        else:
            self._run_inline(job)

    def _decode(self, msg: Any) -> tuple[HandlerSpec | None, str, Any, str | None]:
        value = msg.value()
        if value is None:
            raise env_error("null value (tombstone)", value)
        if not value:
            raise env_error("empty value", value)
        event_type = _event_type_header(msg.headers())
        parsed: Any = NOT_PARSED
        if event_type is None:
            parsed = env.loads(value)
            event_type = parsed.get("event_type") if isinstance(parsed, dict) else None
            if not isinstance(event_type, str) or not event_type:
                raise UnknownEventType("record has no event_type header or field", raw=value)
        spec = self.router.get(event_type)
        if spec is None:
            if self.router.on_unknown == "skip":
                return None, event_type, None, None
            raise UnknownEventType(f"no handler for event type {event_type!r}", raw=value)
        payload, event_id = spec.decode(value, parsed)
        return spec, event_type, payload, event_id

    @staticmethod
    def _lane(spec: HandlerSpec, msg: Any) -> Hashable | None:
        if spec.ordering == "key":
            key = msg.key()
            return None if key is None else (msg.topic(), msg.partition(), key)
        if spec.ordering == "partition":
            return (msg.topic(), msg.partition())
        return None

    # -- running -----------------------------------------------------------------------

    def _context(self, job: Job) -> Context:
        msg = job.msg
        return Context(
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            key=msg.key(),
            headers=msg.headers(),
            event_type=job.event_type,
            event_id=job.event_id,
            attempt=job.attempt,
            timestamp=msg.timestamp()[1],
            group=self.group,
            producer=self.producer,
        )

    def _run_plain(  # the hot path passes what it has: no Job object
        self,
        msg: Any,
        state: PartitionState,
        spec: HandlerSpec,
        payload: Any,
        meta: tuple[str | None, str, int],
    ) -> None:
        """The hot path: a plain sync handler, nothing of its partition in flight.

        ``meta`` is (event id, event type, attempt).
        """
        event_type = meta[1]
        started = time.perf_counter()
        try:
            spec.fn(payload)
        except Exception as exc:  # rare: take the general path with a Job
            self.stats.duration(event_type, time.perf_counter() - started)
            job = Job(msg, state, spec, payload, meta[0], event_type, meta[2])
            state.tracker.begin(msg.offset(), msg.timestamp()[1])
            state.running += 1
            self.buffered += 1
            self._settle(job, None, exc, lane=None)
            return
        self.stats.duration(event_type, time.perf_counter() - started)
        self.stats.count(state.topic, event_type, "ok")
        offset = msg.offset()
        if not state.tracker.done_inline(offset):
            state.tracker.begin(offset, msg.timestamp()[1])
            state.tracker.finish(offset)

    def _run_inline(self, job: Job) -> None:
        """A sync handler with nothing of its partition in flight: call it right here."""
        if job.lot is not None and self._park(job):
            return
        ctx = self._context(job) if job.spec.wants_ctx or self._middleware else None
        error = self._call_sync(job, ctx)
        msg, state = job.msg, job.state
        if error is None and (ctx is None or not ctx.pending_deliveries()):
            self.stats.count(msg.topic(), job.event_type, "ok")
            offset = msg.offset()
            if not state.tracker.done_inline(offset):
                state.tracker.begin(offset, msg.timestamp()[1])
                state.tracker.finish(offset)
            if job.lot is not None:
                self.lot.left(job.lot, msg, state.tier)
            return
        state.tracker.begin(msg.offset(), msg.timestamp()[1])
        state.running += 1
        self.buffered += 1
        self._settle(job, ctx, error, lane=None)

    def _call_sync(self, job: Job, ctx: Context | None) -> BaseException | None:
        """Call a sync handler; its duration goes to the stats, its error is returned."""
        if self._middleware:
            self._before(ctx)
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            if job.spec.wants_ctx:
                job.spec.fn(job.payload, ctx)
            else:
                job.spec.fn(job.payload)
        except Exception as exc:  # a handler failure is data, not a crash
            error = exc
        duration = time.perf_counter() - started
        self.stats.duration(job.event_type, duration)
        if self._middleware:
            self._after(ctx, error, duration)
        return error

    def _start(self, job: Job) -> None:
        """Called by the lanes when ``job`` may run."""
        if job.state.revoked:
            self._release(job, self._lane(job.spec, job.msg))
            return
        if job.lot is not None and self._park(job):
            self._release(job, self._lane(job.spec, job.msg))
            return
        if job.spec.is_async or job.spec.blocking:
            if self._has_room(job.spec):
                self._launch(job)
            else:
                self._waiting.append(job)
        else:
            # Queued sync job: run on the next loop turn, not recursively from release().
            self._loop.call_soon(self._run_queued_sync, job)

    def _park(self, job: Job) -> bool:
        """Keep-key-order: send ``job`` behind its key's head in a retry tier, if parked."""
        assert job.lot is not None
        msg, state = job.msg, job.state
        target = self.lot.park_target(job.lot, msg, state.tier)
        if target is None:
            return False
        if not state.running:  # the inline path has not begun the offset yet
            state.tracker.begin(msg.offset(), msg.timestamp()[1])
        headers = parked_headers(msg, target)
        plan = FailurePlan("retry", target.topic, headers, 0.0, job.attempt, record_id(msg)[1])
        self.lot.parked(job.lot, state.tier)
        self.stats.count(msg.topic(), job.event_type, "retried")
        state.acks += 1
        self.acks_pending += 1
        self._publish_failure(msg, state, plan, REPUBLISH_BACKOFF[0])
        return True

    def _has_room(self, spec: HandlerSpec) -> bool:
        if self.running >= self._max_inflight:
            return False
        return spec.max_inflight is None or self._per_handler.get(spec, 0) < spec.max_inflight

    def _launch(self, job: Job) -> bool:
        """Start ``job``'s task; False if its partition was revoked while it waited."""
        if job.state.revoked:
            self._release(job, self._lane(job.spec, job.msg))
            return False
        self.running += 1
        self._per_handler[job.spec] = self._per_handler.get(job.spec, 0) + 1
        task = self._loop.create_task(self._run_task(job))
        job.state.tasks.add(task)
        task.add_done_callback(job.state.tasks.discard)
        return True

    def _task_ended(self, spec: HandlerSpec) -> None:
        self.running -= 1
        self._per_handler[spec] -= 1
        # Keep going until a job really starts: a waiting job of a revoked partition is
        # released instead, and must not leave the others waiting with nothing running.
        while self._waiting and self.running < self._max_inflight:
            job = self._next_waiting()
            if job is None or self._launch(job):
                return

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

    def _run_queued_sync(self, job: Job) -> None:
        ctx = self._context(job) if job.spec.wants_ctx or self._middleware else None
        error = self._call_sync(job, ctx)
        self._settle(job, ctx, error, lane=self._lane(job.spec, job.msg))

    async def _run_task(self, job: Job) -> None:
        ctx = self._context(job) if job.spec.wants_ctx or self._middleware else None
        lane = self._lane(job.spec, job.msg)
        self._before(ctx)
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            await self._invoke(job, ctx)
            if ctx is not None:
                for delivery in ctx.pending_deliveries():
                    await delivery
        except asyncio.CancelledError:
            # Revoked or shut down past the bound: not done, so not committed; the next
            # owner of the partition handles the event again.
            self._task_ended(job.spec)
            self._release(job, lane)
            raise
        except Exception as exc:
            error = exc
        duration = time.perf_counter() - started
        self._task_ended(job.spec)
        self._after(ctx, error, duration)
        self.stats.duration(job.event_type, duration)
        self._settle(job, None, error, lane)

    async def _invoke(self, job: Job, ctx: Context | None) -> None:
        args = (job.payload, ctx) if job.spec.wants_ctx else (job.payload,)
        if job.spec.blocking:
            await self._loop.run_in_executor(self._threads, lambda: job.spec.fn(*args))
        elif job.spec.timeout is not None:
            async with asyncio.timeout(job.spec.timeout):
                await job.spec.fn(*args)
        else:
            await job.spec.fn(*args)

    # -- outcomes ----------------------------------------------------------------------

    def _settle(
        self, job: Job, ctx: Context | None, error: BaseException | None, lane: Hashable | None
    ) -> None:
        """Record the outcome of a begun job and free its lane."""
        msg, state = job.msg, job.state
        if error is None and ctx is not None and not _all_done(ctx.pending_deliveries()):
            # A sync handler's follow-up publishes: wait for their acks before done.
            task = self._loop.create_task(self._await_outputs(job, ctx, lane))
            state.tasks.add(task)
            task.add_done_callback(state.tasks.discard)
            return
        try:
            if error is None or isinstance(error, Skip):
                outcome = "ok" if error is None else "skipped"
                self.stats.count(msg.topic(), job.event_type, outcome)
                state.tracker.finish(msg.offset())
                if job.lot is not None:
                    self.lot.left(job.lot, msg, state.tier)
            elif not state.revoked:
                plan = self._fail(msg, state, error, job.spec, job.attempt, job.event_type)
                if job.lot is not None:
                    self._track_parked(job.lot, msg, state, plan)
        except Exception:
            # A bug of ours, not the handler's: the offset stays pending (never committed,
            # so the event is seen again after a restart) and the lane moves on.
            log.exception("outcome handling failed", topic=msg.topic(), offset=msg.offset())
        finally:
            self._release(job, lane)

    async def _await_outputs(self, job: Job, ctx: Context, lane: Hashable | None) -> None:
        error: BaseException | None = None
        try:
            for delivery in ctx.pending_deliveries():
                await delivery
        except asyncio.CancelledError:
            self._release(job, lane)  # revoked or lost: not done, but the lane must move on
            raise
        except Exception as exc:
            error = exc
        self._settle(job, None, error, lane)

    def _track_parked(
        self, lot: LotKey, msg: Any, state: PartitionState, plan: FailurePlan
    ) -> None:
        if plan.kind == "retry":
            not_before = env.header_int(plan.headers, env.H_NOT_BEFORE) or 0
            self.lot.failed_to_tier(lot, msg, state.tier, plan.topic, not_before)
        else:
            self.lot.left(lot, msg, state.tier)

    def _release(self, job: Job, lane: Hashable | None) -> None:
        job.state.running -= 1
        self.buffered -= 1
        self._lanes.release(lane)
        job.state.notify_if_idle()
        if self.buffered == self._drained_below:
            # Resume paused partitions now, not at the next poll-loop turn.
            self._on_drained()

    def _done_now(self, msg: Any, state: PartitionState) -> None:
        if not state.tracker.done_inline(msg.offset()):
            state.tracker.begin(msg.offset(), msg.timestamp()[1])
            state.tracker.finish(msg.offset())

    def _bad_input(
        self, msg: Any, state: PartitionState, exc: PermanentError, attempt: int
    ) -> None:
        self.stats.decode_error(msg.topic())
        state.tracker.begin(msg.offset(), msg.timestamp()[1])
        event_type = env.header_str(msg.headers(), env.HEADER_EVENT_TYPE)
        known = event_type if event_type and self.router.get(event_type) else UNKNOWN_EVENT_TYPE
        self._fail(msg, state, exc, None, attempt, known)

    def _fail(
        self,
        msg: Any,
        state: PartitionState,
        exc: BaseException,
        spec: HandlerSpec | None,
        attempt: int,
        event_type: str,
    ) -> FailurePlan:
        """Send a failed record to its next stop; it is done once the broker has it."""
        policy = spec.retry if spec is not None and not isinstance(exc, PermanentError) else None
        plan = self.planner.plan(msg, exc, policy, attempt, state.tier)
        outcome = "retried" if plan.kind == "retry" else "dead_lettered"
        self.stats.count(msg.topic(), event_type, outcome)
        self.stats.failure(plan.kind, event_type, error_type(exc))
        # A retry is routine and counted in metrics: DEBUG, and only built when DEBUG is on,
        # or a burst of failures would cost a log line per event. A dead letter: WARNING.
        if plan.kind == "dlq" or DEBUG_LOG.isEnabledFor(logging.DEBUG):
            log.log(
                logging.DEBUG if plan.kind == "retry" else logging.WARNING,
                "event retried" if plan.kind == "retry" else "event dead-lettered",
                topic=msg.topic(),
                partition=msg.partition(),
                offset=msg.offset(),
                event_type=event_type,
                event_id=env.header_str(msg.headers(), env.HEADER_EVENT_ID),
                attempt=attempt,
                target=plan.topic,
                error_type=error_type(exc),
                error=str(exc)[:200],
            )
        state.acks += 1
        self.acks_pending += 1
        self._publish_failure(msg, state, plan, REPUBLISH_BACKOFF[0])
        return plan

    def _publish_failure(
        self, msg: Any, state: PartitionState, plan: FailurePlan, backoff: float
    ) -> None:
        try:
            delivery = self.producer.send(
                plan.topic,
                msg.value(),
                key=msg.key(),
                headers=plan.headers,
                partition=plan.partition,
            )
        except Exception as exc:  # rejected locally: same handling as a failed delivery
            self._failure_settled(msg, state, plan, backoff, exc)
            return

        def acked(d: Delivery) -> None:
            self._loop.call_soon_threadsafe(
                self._failure_settled, msg, state, plan, backoff, d.exception()
            )

        delivery.add_done_callback(acked)

    def _failure_settled(
        self,
        msg: Any,
        state: PartitionState,
        plan: FailurePlan,
        backoff: float,
        error: BaseException | None,
    ) -> None:
        if error is None:
            state.acks -= 1
            self.acks_pending -= 1
            state.tracker.finish(msg.offset())
            state.notify_if_idle()
            return
        # Loud, and never committed: the offset stays pending, so a restart or the next
        # owner handles the event again. We keep trying with backoff meanwhile.
        self.stats.publish_failed(plan.kind)
        log.error(
            "retry/DLQ publish failed; offset not committed",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            target=plan.topic,
            error=str(error),
            next_try_s=backoff,
        )
        if state.revoked:
            state.acks -= 1
            self.acks_pending -= 1
            state.notify_if_idle()
            return
        self._loop.call_later(
            backoff,
            self._publish_failure,
            msg,
            state,
            plan,
            min(backoff * 2, REPUBLISH_BACKOFF[1]),
        )

    # -- middleware --------------------------------------------------------------------

    def _before(self, ctx: Context | None) -> None:
        if ctx is None:
            return
        for mw in self._middleware:
            try:
                mw.before_handle(ctx)
            except Exception:
                log.exception("middleware before_handle failed", middleware=type(mw).__name__)

    def _after(self, ctx: Context | None, error: BaseException | None, duration: float) -> None:
        if ctx is None:
            return
        for mw in self._middleware:
            try:
                mw.after_handle(ctx, error, duration)
            except Exception:
                log.exception("middleware after_handle failed", middleware=type(mw).__name__)


def _event_type_header(headers: env.Headers | None) -> str | None:
    """The ``event_type`` header (the last one wins), read once per record."""
    found = None
    if headers:
        for name, value in headers:
            if name == "event_type":
                found = value
    if found is None:
        return None
    try:
        return found.decode()
    except UnicodeDecodeError:
        return None


def _all_done(deliveries: list[Delivery]) -> bool:
    return all(d.done() and d.exception() is None for d in deliveries)


def env_error(message: str, value: bytes | None) -> PermanentError:
    """A :class:`DecodeError` for an empty or null record value."""
    from streamkit.errors import DecodeError

    return DecodeError(message, raw=value)
