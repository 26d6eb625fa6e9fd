"""From a polled record to an outcome: route, run the handler, settle the offset.

Runs on the event-loop thread only. Routing and decoding belong to the router
(:meth:`Router.resolve`), scheduling to :mod:`.scheduler`, failures to :mod:`.outcomes`,
in-flight counts to :mod:`.state`; this module decides which path an event takes:

- sync handler, no lane of its partition busy: called right here (hot path; with its
  Context if it wants one; under middleware whose scopes all have a sync form, inside
  them and the event's own contextvars);
- async, ``blocking=True``, behind busy lanes, or under a scope with no sync form: a job,
  through the scheduler's lanes, run as a task (sync handlers stay on the loop thread).

A sync handler's publishes are settled by callback once acknowledged (no task): its lane
is free when it returns, its offset held until then (:meth:`Dispatcher._await_outputs`).
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import Executor
from functools import partial
from typing import Any

import structlog
from confluent_kafka import KafkaError

from streamkit import envelope as env
from streamkit.codecs.base import NOT_PARSED
from streamkit.consumer.handoff import Handoff
from streamkit.consumer.hold import Hold
from streamkit.consumer.job import EventStats, Job
from streamkit.consumer.outcomes import FailurePath
from streamkit.consumer.outputs import InlineOutputs
from streamkit.consumer.parking import ParkingLot
from streamkit.consumer.scheduler import Scheduler
from streamkit.consumer.state import Load, PartitionState
from streamkit.delivery import Delivery
from streamkit.errors import (
    DecodeError,
    PermanentError,
    Skip,
    TransientDecodeError,
    TransientDependencyError,
)
from streamkit.handlers.context import Context
from streamkit.handlers.publishing import EventPublisher
from streamkit.handlers.registry import UNKNOWN_EVENT_TYPE, HandlerSpec, Router
from streamkit.record import Headers, Record

log = structlog.get_logger("streamkit.consumer")
# What the hot paths carry instead of a Job: (event id, event type, attempt, headers).
Meta = tuple[str | None, str, int, Headers | None]
_referents = gc.get_referents


class Dispatcher:
    """Turns records into handler calls and outcomes for one worker."""

    def __init__(
        self,
        *,
        router: Router,
        publisher: EventPublisher,
        failures: FailurePath,
        handoff: Handoff,
        lot: ParkingLot,
        stats: EventStats,
        threads: Executor,
        group: str,
        max_inflight: int,
        load: Load,
    ) -> None:
        self.router = router
        self.publisher = publisher
        self.failures = failures
        self._handoff = handoff  # delivery reports reach the loop through it
        self.lot = lot
        self.stats = stats
        self.group = group
        self.load = load
        # Holds back a retry-tier record that is not due yet (the worker's flow control).
        self.gate: Callable[[Record, Headers | None, PartitionState], bool] | None = None
        self._threads = threads
        self._loop = asyncio.get_running_loop()
        self._chain = publisher.chain  # one chain: scopes here, publish hooks in the publisher
        # A sync handler needs a task only under a scope that has no sync form.
        self._task_scopes = bool(self._chain) and not self._chain.runs_sync
        # Header value -> handler, for records that need no other routing step (none when
        # a topic handler could claim them first): decoded at once, no router step.
        self._by_header = router.by_header()
        # Where a handler run on the spot with no middleware is counted ok with its
        # duration: no scope, so no exemplar to record (the tracing middleware sets one).
        self._ok_times = stats.ok_times
        self.scheduler = Scheduler(
            loop=self._loop,
            max_inflight=max_inflight,
            start=self._start,
            runner=self._run_task,
            abandon=self._release,
        )
        # Events whose dependency (schema registry, dedupe store) is down wait here.
        self.hold = Hold(
            loop=self._loop,
            resume=self._resume,
            abandon=self._release,
            occupy=self.scheduler.occupy,
            stats=stats,
        )

    @property
    def running(self) -> int:
        """Handler tasks running now."""
        return self.scheduler.running

    @property
    def idle(self) -> bool:
        """Nothing started, queued or awaiting an acknowledgement."""
        return self.quiet and not self.load.acks

    @property
    def quiet(self) -> bool:
        """Nothing started or queued: at most failure records awaiting their acks."""
        return not (self.load.buffered or self.scheduler.running)

    # -- intake ------------------------------------------------------------------------

    def take_batch(
        self,
        msgs: list[Record],
        states: Mapping[tuple[str, int], PartitionState],
        on_error: Callable[[KafkaError], None],
    ) -> None:
        """Handle a polled batch: each record of an assigned partition, in order.

        A partition's tracker learns how far it was read once per batch, not once per
        record (see :meth:`OffsetTracker.read_to`): a record done on the spot takes no
        step of its own. ``on_error`` hears of an error returned in place of a record.
        """
        last: dict[PartitionState, Record] = {}
        take = self._take
        topic, partition, state = "", -1, None
        for msg, headers in zip(msgs, read_headers(msgs), strict=True):
            error = msg.error()
            if error is not None:
                on_error(error)
                continue
            # A batch comes in runs of one partition's records: its state is looked up
            # once a run (each record's topic is a new str, hashed again for a lookup).
            if msg.partition() != partition or msg.topic() != topic:
                topic, partition = msg.topic(), msg.partition()
                state = states.get((topic, partition))
            if state is None or state.gated:
                continue  # revoked meanwhile, or sought back to a retry record not yet due
            if take(msg, state, headers):
                last[state] = msg
        for state, msg in last.items():
            state.tracker.read_to(msg.offset(), msg.timestamp()[1])

    def take(self, msg: Record, state: PartitionState) -> bool:
        """:meth:`take_batch` for one record (the in-memory broker's way); False if
        ``gate`` held it back (a retry not yet due)."""
        if not self._take(msg, state, read_headers([msg])[0]):
            return False
        state.tracker.read_to(msg.offset(), msg.timestamp()[1])
        return True

    def _take(self, msg: Record, state: PartitionState, headers: Headers | None) -> bool:
        """Handle one polled record, its headers read (:func:`read_headers`); False if
        ``gate`` held it back (a retry not yet due).

        A record whose headers could not be read goes to the DLQ with its key and value
        as they are.
        """
        if headers is BROKEN:
            bad = DecodeError("undecodable header name (not UTF-8)", raw=msg.value())
            self.failures.bad_input(msg, None, state, bad, 1)
            return True
        retry = state.tier.n
        if retry and self.gate is not None and self.gate(msg, headers, state):
            return False
        if state.failed_outputs is not None and self._output_failed(msg, state, headers):
            return True
        spec = self._by_header.get(env.header_value(headers, env.HEADER_EVENT_TYPE))
        if spec is None or not self._run_known(msg, state, spec, headers, retry):
            self.handle(msg, state, headers)
        return True

    def _run_known(
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        headers: Headers | None,
        retry: int,
    ) -> bool:
        """The hot paths: a handler named by the header (a retry tier's record too,
        ``retry`` its tier: its attempt is in its headers), decoded with no router step.

        A sync handler with no lane of its partition busy runs right here; anything else
        goes on as :meth:`handle` would after routing. False (nothing done) for anything
        unusual -- an empty value, a decode error -- which :meth:`handle` then takes from
        the start.
        """
        value = msg.value()
        if not value:
            return False
        try:
            payload, event_id = spec.decode(value, NOT_PARSED)
        except Exception:
            return False
        attempt = (env.header_int(headers, env.H_ATTEMPT) or 1) if retry else 1
        meta: Meta = (event_id, spec.event_type, attempt, headers)
        # No job holds or waits for a lane, and no scope of the chain needs a task.
        if spec.inline and state.running == state.awaiting and not self._task_scopes:
            if self._chain.active or spec.wants_ctx:  # sync scopes only
                self._run_scoped(msg, state, spec, payload, meta)
            else:
                self._run_plain(msg, state, spec, payload, meta)
        else:
            self._route(msg, state, spec, payload, meta)
        return True

    def _output_failed(self, msg: Record, state: PartitionState, headers: Headers | None) -> bool:
        """An input read again because a record it emitted failed (consumer/confirmed):
        down the failure path with the delivery's error, not run again; False for the
        inputs after it, which run as usual."""
        failed = state.failed_outputs
        assert failed is not None
        error = failed.pop(msg.offset(), None)
        if not failed:
            state.failed_outputs = None
        if error is None:
            return False
        attempt = (env.header_int(headers, env.H_ATTEMPT) or 1) if state.tier.n else 1
        try:
            resolved = self.router.resolve(msg, headers, state.tier.source)
        except PermanentError as exc:  # cannot happen (it was handled): the DLQ, then
            self.failures.bad_input(msg, headers, state, exc, attempt)
            return True
        if resolved is None:  # the router skips its type now: nothing to fail (done)
            return True
        spec, event_type, payload, event_id = resolved
        job = Job(msg, state, spec, payload, event_id, event_type, attempt, headers)
        job.lane = None  # it holds none: it does not run
        if spec.keep_key_order:
            job.lot = self.lot.lot_key(msg, headers, state.tier)
            if self.failures.park(job, begun=False):  # its key waits on an earlier failure
                return True
        state.begin(msg)
        self._settle(job, None, error)
        return True

    def handle(self, msg: Record, state: PartitionState, headers: Headers | None) -> None:
        """Route, decode and run (or queue) one record whose headers were read once."""
        attempt = (env.header_int(headers, env.H_ATTEMPT) or 1) if state.tier.n else 1
        try:
            resolved = self.router.resolve(msg, headers, state.tier.source)
        except PermanentError as exc:
            self.failures.bad_input(msg, headers, state, exc, attempt)
            return
        if resolved is None:  # unknown type, router set to skip them
            self.stats.count(msg.topic(), UNKNOWN_EVENT_TYPE, "skipped")
            return  # done: nothing to track (see take_batch)
        spec, event_type, payload, event_id = resolved
        self._route(msg, state, spec, payload, (event_id, event_type, attempt, headers))

    def _route(
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        payload: object,
        meta: Meta,
    ) -> None:
        """Run or queue a decoded record: on the spot, or as a job through its lane."""
        lanes_free = state.running == state.awaiting
        if spec.plain and lanes_free and not self._chain.active:
            self._run_plain(msg, state, spec, payload, meta)
            return
        job = Job(msg, state, spec, payload, *meta)
        if spec.keep_key_order:
            job.lot = self.lot.lot_key(msg, meta[3], state.tier)
        if spec.is_async or spec.blocking or not lanes_free or self._task_scopes:
            state.begin(msg)
            self.scheduler.submit(job)
        else:
            self._run_inline(job)

    # -- running on the spot -----------------------------------------------------------

    def _run_plain(  # the hot path passes what it has: no Job object
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        payload: object,
        meta: Meta,
    ) -> None:
        """A plain sync handler, no lane of its partition busy."""
        label = spec.event_type  # metric label: bounded (a catch-all counts as "*")
        started = time.perf_counter()
        try:
            spec.fn(payload)
        except BaseException as exc:  # rare: take the general path with a Job
            self.stats.duration(label, time.perf_counter() - started)
            job = Job(msg, state, spec, payload, meta[0], meta[1], meta[2], meta[3])
            state.begin(msg)
            self._settle(job, None, exc)
            return
        self._ok_times[(state.topic, label)].append(time.perf_counter() - started)

    def _run_scoped(
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        payload: object,
        meta: Meta,
    ) -> None:
        """:meth:`_run_plain` with a Context, inside the middleware's sync scopes if any:
        what :meth:`_run_inline` does for such a handler, without a Job unless the outcome
        needs one."""
        ctx = self._plain_context(msg, state, payload, meta)
        if self._chain.active:
            call = partial(spec.fn, payload, ctx) if spec.wants_ctx else partial(spec.fn, payload)
            error = contextvars.copy_context().run(self._timed_sync, spec.event_type, ctx, call)
            self._scoped_outcome(msg, state, spec, (payload, meta, ctx), error)
            return
        # No scopes, so the handler wants its Context (see _run_known): called right here,
        # as _run_plain does (no partial and no _timed_sync frame: ~0.3 us of the ~1 us a
        # Context adds per event).
        label = spec.event_type
        started = time.perf_counter()
        try:
            spec.fn(payload, ctx)
        except BaseException as exc:  # see _timed_sync: a handler failure is data
            self.stats.duration(label, time.perf_counter() - started)
            self._scoped_outcome(msg, state, spec, (payload, meta, ctx), exc)
            return
        if ctx.pending_deliveries():  # its publishes: done once they are acknowledged
            self.stats.duration(label, time.perf_counter() - started)
            self._await_outputs_inline(msg, state, spec, (payload, meta, ctx))
            return
        self._ok_times[(state.topic, label)].append(time.perf_counter() - started)

    def _await_outputs_inline(
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        ran: tuple[object, Meta, Context],
    ) -> None:
        """:meth:`_await_outputs` for a handler run on the spot with no scope and no
        parking lot (the hot path): no Job unless a publish fails (consumer/outputs)."""
        waiter = InlineOutputs(msg, state, spec, ran, self.stats, self._inline_outputs_failed)
        waiter.begin()
        self._handoff.when_settled(ran[2].pending_deliveries(), waiter.settled)

    def _inline_outputs_failed(self, waiter: InlineOutputs, error: BaseException) -> None:
        """A publish of a handler run on the spot failed: its event fails as if the
        handler had raised (its offset is begun, it holds no lane)."""
        payload, meta, _ = waiter.ran
        job = Job(waiter.msg, waiter.state, waiter.spec, payload, *meta)
        job.lane = None
        self._settle(job, None, error)

    def _scoped_outcome(
        self,
        msg: Record,
        state: PartitionState,
        spec: HandlerSpec,
        ran: tuple[object, Meta, Context],
        error: BaseException | None,
    ) -> None:
        """The outcome of a handler run by :meth:`_run_scoped` (its duration counted):
        ``ran`` is its payload, meta and context."""
        payload, meta, ctx = ran
        if error is None and not ctx.pending_deliveries():
            self.stats.count(state.topic, spec.event_type, "ok")
            return
        job = Job(msg, state, spec, payload, meta[0], meta[1], meta[2], meta[3])
        state.begin(msg)
        self._settle(job, ctx, error)

    def _plain_context(
        self,
        msg: Record,
        state: PartitionState,
        payload: object,
        meta: Meta,
    ) -> Context:
        """The handler's Context; topic and partition from the partition's state."""
        return Context._of(
            msg, state.topic, state.partition, meta[3], meta[1], meta[0], meta[2],
            self.group, self.publisher, payload,
        )  # fmt: skip

    def _run_inline(self, job: Job) -> None:
        """A sync handler with nothing of its partition in flight: call it right here."""
        if job.lot is not None and self.failures.park(job, begun=False):
            return
        ctx = self._context(job) if job.spec.wants_ctx or self._chain.active else None
        error = self._call_sync(job, ctx)
        msg, state = job.msg, job.state
        if error is None and (ctx is None or not ctx.pending_deliveries()):
            self.stats.count(msg.topic(), job.spec.event_type, "ok")
            if job.lot is not None:
                self.lot.left(job.lot, msg, job.headers, state.tier)
            return
        state.begin(msg)
        self._settle(job, ctx, error)

    def _call_sync(self, job: Job, ctx: Context | None) -> BaseException | None:
        """Call a sync handler; its duration goes to the stats, its error is returned."""
        call = partial(_call_fn, job, ctx)
        if ctx is not None and self._chain.active:
            # The event's own contextvars, as a task would have: what a scope sets (the
            # current span, an exemplar's trace id) ends with the event, not with the loop.
            return contextvars.copy_context().run(self._timed_sync, job.spec.event_type, ctx, call)
        return self._timed_sync(job.spec.event_type, None, call)

    def _timed_sync(
        self, label: str, scoped: Context | None, call: Callable[[], None]
    ) -> BaseException | None:
        """Run ``call`` (inside the chain's sync scopes when given the event's context)."""
        started = time.perf_counter()
        try:
            if scoped is not None:
                self._chain.run_sync(scoped, call)
            else:
                call()
        except BaseException as exc:  # a handler failure is data, not a crash: even a
            # KeyboardInterrupt/SystemExit subclass raised by handler code (signals reach
            # the worker through the loop's handlers, never as exceptions in handlers)
            self.stats.duration(label, time.perf_counter() - started)
            # Returned from here: no local of this frame (which its traceback holds)
            # keeps the error, so no reference cycle is left for the collector.
            return exc
        self.stats.duration(label, time.perf_counter() - started)
        return None

    def _context(self, job: Job) -> Context:
        meta = (job.event_id, job.event_type, job.attempt, job.headers)
        return self._plain_context(job.msg, job.state, job.payload, meta)

    # -- running through the scheduler -------------------------------------------------

    def _start(self, job: Job) -> None:
        """Called by the lanes when ``job`` may run."""
        state, offset = job.state, job.msg.offset()
        if state.revoked or offset >= state.cut:  # cut: see quiesce.CommitPoint
            self._release(job)
            return
        state.started = max(state.started, offset)
        if job.lot is not None and self.failures.park(job, begun=True):
            self._release(job)
            return
        if job.spec.is_async or job.spec.blocking or self._task_scopes:
            self.scheduler.launch_or_wait(job)
        else:
            # Queued sync job: run on the next loop turn, not recursively from release(),
            # in a context of its own (not that of the task whose settling started it).
            self._loop.call_soon(self._run_queued_sync, job, context=job.context)

    def _run_queued_sync(self, job: Job) -> None:
        ctx = self._context(job) if job.spec.wants_ctx or self._chain.active else None
        self._settle(job, ctx, self._call_sync(job, ctx))

    async def _run_task(self, job: Job) -> None:
        spec = job.spec
        ctx: Context | None = None
        started = time.perf_counter()
        error: BaseException | None = None
        try:  # from the first line: whatever happens, task_ended is called
            if spec.wants_ctx or self._chain.active:
                ctx = self._context(job)
            if ctx is not None and self._chain.active:
                await self._chain.run(ctx, partial(self._invoke, job, ctx))
            elif spec.awaited_directly:  # the usual async handler: one coroutine less
                await (spec.fn(job.payload, ctx) if spec.wants_ctx else spec.fn(job.payload))
            else:
                await self._invoke(job, ctx)
            if ctx is not None and ctx.pending_deliveries():
                await self._handoff.acked(ctx.pending_deliveries())
        except asyncio.CancelledError:
            # Revoked or shut down past the bound: not done, so not committed; the next
            # owner of the partition handles the event again.
            self.scheduler.task_ended(job)
            self._release(job)
            raise
        except BaseException as exc:  # see _call_sync: handler code's, not a crash
            error = exc
        self.scheduler.job_ending(job)  # the job launched from here on runs in this task
        self.stats.duration(spec.event_type, time.perf_counter() - started)
        self._settle(job, ctx, error)

    async def _invoke(self, job: Job, ctx: Context | None) -> None:
        spec = job.spec
        args = (job.payload, ctx) if spec.wants_ctx else (job.payload,)
        if spec.blocking:
            # The event's contextvars (set by middleware scopes) go with it into the thread.
            run = contextvars.copy_context().run
            await self._loop.run_in_executor(self._threads, partial(run, spec.fn, *args))
        elif not spec.is_async:
            spec.fn(*args)  # a sync handler inside middleware scopes: on the loop thread
        elif spec.timeout is not None:
            async with asyncio.timeout(spec.timeout):
                await spec.fn(*args)
        else:
            await spec.fn(*args)

    # -- outcomes ----------------------------------------------------------------------

    def _settle(self, job: Job, ctx: Context | None, error: BaseException | None) -> None:
        """Record the outcome of a begun job and free its lane."""
        msg, state = job.msg, job.state
        if error is None and ctx is not None and not _all_done(ctx.pending_deliveries()):
            self._await_outputs(job, ctx.pending_deliveries())
            return
        if isinstance(error, TransientDependencyError) and not state.revoked:
            self.hold.wait(job, error)  # lane and offset kept: tried again after backoff
            return
        if job.held is not None:
            self.hold.passed(job)
        try:
            if error is None or isinstance(error, Skip):
                outcome = "ok" if error is None else "skipped"
                self.stats.count(msg.topic(), job.spec.event_type, outcome)
                state.tracker.finish(msg.offset())
                if job.lot is not None:
                    self.lot.left(job.lot, msg, job.headers, state.tier)
            elif not state.revoked:
                plan = self.failures.fail(
                    msg, state, error, job.spec, job.attempt, job.spec.event_type, job.headers, ctx
                )
                if job.lot is not None:
                    self.failures.track_parked(job, plan)
        except Exception as exc:  # a bug of ours, not the handler's: never strand the event
            self.failures.fallback(job, exc)
        finally:
            self._release(job)
            if error is not None:
                # Told to the failure path (headers, log line) and not needed again. Its
                # traceback holds the handler's frames and, through them, the dispatcher
                # frames that held the error: a cycle of ~15 objects a failure, otherwise
                # left to the cyclic collector.
                error.__traceback__ = None

    def _resume(self, job: Job) -> None:
        """A held job's turn again: decoded again if decoding waited, then run as queued."""
        if isinstance(job.held, TransientDecodeError) and not job.state.revoked:
            try:
                resolved = self.router.resolve(job.msg, job.headers, job.state.tier.source)
            except Exception as exc:  # bad input now that the service answered (DLQ), or
                self._settle(job, None, exc)  # a bug of ours (its retry path): never stranded
                return
            if resolved is None:  # unknown type, router set to skip them
                self._settle(job, None, Skip())
                return
            job.spec, job.event_type, job.payload, job.event_id = resolved
        self._start(job)

    def _await_outputs(self, job: Job, deliveries: list[Delivery]) -> None:
        """A sync handler's publishes: its event is done once they are acknowledged.

        The handler has run, so its lane is free now: the next event of the key runs at
        once, and the producer (idempotent) keeps their outputs in order. The offset stays
        held until the acks, so at-least-once is kept; a failed publish then takes the
        event down the failure path, as a failed handler would have. A keep-key-order
        handler keeps its lane until then: its key's parking lot must learn of a failure
        before the key's next event runs.
        """
        state = job.state
        if job.lot is not None:
            self.scheduler.occupy(job.lane)  # taken if it ran inline, without it
            self._track(job, self._lane_held_until_acked(job, deliveries))
            return
        # Free at once (a no-op for a job that ran inline: no job of its partition held
        # or waited for a lane then, and nothing ran since).
        self.scheduler.release_lane(job.lane)
        job.lane = None
        state.await_outputs(job.msg.offset())
        self._handoff.when_settled(deliveries, partial(self._outputs_settled, job))

    def _outputs_settled(self, job: Job, error: BaseException | None) -> None:
        job.state.outputs_settled()
        self._settle(job, None, error)

    async def _lane_held_until_acked(self, job: Job, deliveries: list[Delivery]) -> None:
        error: BaseException | None = None
        try:
            await self._handoff.acked(deliveries)
        except asyncio.CancelledError:
            self._release(job)  # revoked or lost: not done, but the lane must move on
            raise
        except Exception as exc:
            error = exc
        finally:
            job.state.untrack()
        self._settle(job, None, error)

    def _track(self, job: Job, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task of ``job``'s partition; it takes itself out as it ends
        (cancelled before it ran, the drain releases ``job`` for it)."""
        job.state.track(self._loop.create_task(coro), partial(self._release, job))

    def _release(self, job: Job) -> None:
        job.state.release()
        self.scheduler.release_lane(job.lane)


# In place of the headers of a record whose headers cannot be read (see read_headers);
# told apart by identity, never read.
BROKEN: Headers = []


def read_headers(msgs: list[Record]) -> list[Headers | None]:
    """Each record's headers, read once; :data:`BROKEN` where a header name is not UTF-8.

    confluent-kafka (2.16) then builds the (name, value) pair with a NULL name and sets a
    UnicodeDecodeError without failing the call: raised as SystemError by a call made
    through the interpreter's checked path, left pending by its specialised one (a hot
    loop) until some later call or loop end meets it. Touching the NULL crashes the
    interpreter; ``gc.get_referents`` sees only real items, and is a checked call. Such
    a record goes to the DLQ with its key and value as they are.
    """
    heads: list[Headers | None] = []
    try:
        for msg in msgs:
            heads.append(msg.headers())
        # One look for the whole batch (per record it cost ~5 % of the hot path): an
        # error left pending surfaces here, and every pair must hold two real items.
        if _whole(_referents(*heads), sum(map(len, filter(None, heads)))):
            return heads
    except (SystemError, UnicodeDecodeError):  # which one varies: both mean the same
        pass
    return [h if not h or _whole(_referents(h), len(h)) else BROKEN for h in heads] + [
        _read_one(msg) for msg in msgs[len(heads) :]
    ]


def _whole(pairs: list[Any], count: int) -> bool:
    """``pairs`` (header tuples, as gc sees them) are ``count`` pairs of real items."""
    return len(pairs) == count and len(_referents(*pairs)) == 2 * count


def _read_one(msg: Record) -> Headers | None:
    """:func:`read_headers` for one record, the first one its batch's look could not
    read (its call may have raised; the client keeps what it built, so a second call
    returns that with no new error) or one after it."""
    try:
        headers = msg.headers()
        return headers if not headers or _whole(_referents(headers), len(headers)) else BROKEN
    except (SystemError, UnicodeDecodeError):
        return BROKEN


def _call_fn(job: Job, ctx: Context | None) -> None:
    if job.spec.wants_ctx:
        job.spec.fn(job.payload, ctx)
    else:
        job.spec.fn(job.payload)


def _all_done(deliveries: list[Delivery]) -> bool:
    for delivery in deliveries:  # a loop, not all() over a generator: once per event
        if not delivery.done() or delivery.exception() is not None:
            return False
    return True
