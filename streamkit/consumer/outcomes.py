"""The failure path: a failed or bad record goes to a retry tier or the DLQ, acked first.

A failed record's source offset is done only once the broker acknowledged its copy in the
next stop; until then it is held (never committed). A failed publish is loud and retried
with backoff; a restart or the next owner of the partition handles the event again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import structlog

from streamkit import envelope as env
from streamkit.consumer.handoff import Handoff
from streamkit.consumer.job import EventStats, Job
from streamkit.consumer.parking import ParkingLot, parked_headers, record_id
from streamkit.consumer.state import Load, PartitionState
from streamkit.errors import PermanentError, RecordTooLargeError
from streamkit.handlers.publishing import EventPublisher
from streamkit.handlers.registry import UNKNOWN_EVENT_TYPE, HandlerSpec, Router
from streamkit.record import Headers, OutgoingRecord, Record
from streamkit.retry.failures import FailurePlan, FailurePlanner, error_message, error_type

if TYPE_CHECKING:
    from streamkit.handlers.context import Context

log = structlog.get_logger("streamkit.consumer")
DEBUG_LOG = logging.getLogger("streamkit.consumer")  # its level decides if DEBUG lines are built

REPUBLISH_BACKOFF = (0.5, 30.0)  # first and max seconds between failed retry/DLQ publishes


class FailurePath:
    """Plans, sends and settles the retry/DLQ records of one worker."""

    def __init__(
        self,
        *,
        router: Router,
        planner: FailurePlanner,
        publisher: EventPublisher,
        stats: EventStats,
        lot: ParkingLot,
        loop: asyncio.AbstractEventLoop,
        handoff: Handoff,
        on_publish: Callable[[tuple[str, int, int], str | None], None] = lambda key, why: None,
    ) -> None:
        self._router = router
        self._on_publish = on_publish  # a failing retry/DLQ publish (reason) or its recovery
        self._planner = planner
        self._publisher = publisher
        self._stats = stats
        self._lot = lot
        self._loop = loop
        self._handoff = handoff

    def fail(
        self,
        msg: Record,
        state: PartitionState,
        exc: BaseException,
        spec: HandlerSpec | None,
        attempt: int,
        event_type: str,
        headers: Headers | None,
        ctx: Context | None = None,
    ) -> FailurePlan:
        """Send a failed record to its next stop; its offset is done once the broker has it.

        ``event_type`` is the metric label (the handler's; ``__unknown__`` for bad input);
        log lines show the record's own type.
        """
        policy = spec.retry if spec is not None and not isinstance(exc, PermanentError) else None
        plan = self._planner.plan(msg, headers, exc, policy, attempt, state.tier)
        # A retry is routine and counted in metrics: DEBUG, and only built when DEBUG is on,
        # or a burst of failures would cost a log line per event. A dead letter: WARNING.
        if plan.kind == "dlq" or DEBUG_LOG.isEnabledFor(logging.DEBUG):
            _log_failure(msg, headers, plan, exc, attempt, event_type, self._planner.full_errors)
        self._send(msg, state, plan, (event_type, error_type(exc)), ctx)
        return plan

    def bad_input(
        self,
        msg: Record,
        headers: Headers | None,
        state: PartitionState,
        exc: PermanentError,
        attempt: int,
    ) -> None:
        """A record no handler can take: to the DLQ at once (no retry can fix it)."""
        self._stats.decode_error(msg.topic())
        state.tracker.begin(msg.offset(), msg.timestamp()[1])
        event_type = env.header_str(headers, env.HEADER_EVENT_TYPE)
        known = event_type if event_type and self._router.get(event_type) else UNKNOWN_EVENT_TYPE
        self.fail(msg, state, exc, None, attempt, known, headers)

    def fallback(self, job: Job, exc: BaseException) -> None:
        """Settling ``job``'s outcome failed (a bug of ours): dead-letter it, never strand it.

        The offset was begun; without this it would stay pending forever and every restart
        would handle everything after it again.
        """
        msg, state = job.msg, job.state
        log.exception(
            "outcome handling failed; dead-lettering", topic=msg.topic(), offset=msg.offset()
        )
        try:
            self.fail(msg, state, exc, None, job.attempt, job.spec.event_type, job.headers)
        except Exception:
            log.exception("dead-lettering failed too; the event is marked done")
            state.tracker.finish(msg.offset())

    def park(self, job: Job, *, begun: bool) -> bool:
        """Keep-key-order: send ``job`` behind its key's head in a retry tier, if parked."""
        assert job.lot is not None
        msg, state = job.msg, job.state
        target = self._lot.park_target(job.lot, msg, job.headers, state.tier)
        if target is None:
            return False
        if not begun:  # the inline path has not begun the offset yet
            state.tracker.begin(msg.offset(), msg.timestamp()[1])
        headers = parked_headers(msg, job.headers, target)
        partition = record_id(msg, job.headers)[1]
        plan = FailurePlan("retry", target.topic, headers, 0.0, job.attempt, partition)
        self._lot.parked(job.lot, state.tier)
        self._send(msg, state, plan, (job.spec.event_type, None), None)
        return True

    def track_parked(self, job: Job, plan: FailurePlan) -> None:
        """Keep-key-order: the key's head moved to ``plan``'s tier, or left the retry path."""
        assert job.lot is not None
        msg, headers, tier = job.msg, job.headers, job.state.tier
        if plan.kind == "retry":
            not_before = env.header_int(plan.headers, env.H_NOT_BEFORE) or 0
            self._lot.failed_to_tier(job.lot, msg, headers, tier, plan.topic, not_before)
        else:
            self._lot.left(job.lot, msg, headers, tier)

    # -- sending -----------------------------------------------------------------------

    def _send(
        self,
        msg: Record,
        state: PartitionState,
        plan: FailurePlan,
        tally: tuple[str, str | None],
        ctx: Context | None,
    ) -> None:
        record = OutgoingRecord(
            plan.topic,
            msg.value(),
            key=msg.key(),
            headers=plan.headers,
            kind=plan.kind,
            event_type=tally[0],
            partition=plan.partition,
        )
        self._publisher.prepare(record, ctx)  # publish hooks run once, not per resend
        state.ack_started()
        self._resend(_Out(msg, state, record, tally), REPUBLISH_BACKOFF[0])

    def _resend(self, out: _Out, backoff: float) -> None:
        if out.state.revoked and out.failing:
            # Revoked (or rewound by an exactly-once abort) while waiting out a backoff:
            # the partition's next reader handles the event again, so a send now would
            # double it (and, exactly-once, land in a later transaction).
            out.state.ack_ended()
            self._on_publish(out.key, None)
            return
        try:
            delivery = self._publisher.send_prepared(out.record)
        except Exception as exc:  # rejected locally: same handling as a failed delivery
            self._settled(out, backoff, exc)
            return
        self._handoff.when_settled([delivery], partial(self._settled, out, backoff))

    def _settled(self, out: _Out, backoff: float, error: BaseException | None) -> None:
        msg, state, record = out.msg, out.state, out.record
        if error is None:
            self._count(out)
            state.tracker.finish(msg.offset())
            state.ack_ended()
            if out.failing:
                self._on_publish(out.key, None)
            return
        if isinstance(error, RecordTooLargeError) and out.shrink():
            if out.dropped:
                self._stats.value_dropped()
                log.error("dead letter too large: sent without its value", **_where(out, error))
            self._resend(out, backoff)  # smaller now: at most two more sends, no loop
            return
        # Loud, and never committed: the offset stays pending, so a restart or the next
        # owner handles the event again. We keep trying with backoff meanwhile.
        self._stats.publish_failed(record.kind)
        log.error(
            "retry/DLQ publish failed; offset not committed",
            next_try_s=backoff,
            **_where(out, error),
        )
        out.failing = True
        self._on_publish(out.key, f"{record.kind} publish to {record.topic} failing: {error}")
        if state.revoked:
            state.ack_ended()
            self._on_publish(out.key, None)
            return
        next_backoff = min(backoff * 2, REPUBLISH_BACKOFF[1])
        load = state.load  # the same object is counted down: an abort may swap state.load
        load.resending += 1
        self._loop.call_later(backoff, self._resent, out, next_backoff, load)

    def _resent(self, out: _Out, backoff: float, load: Load) -> None:
        load.resending -= 1
        self._resend(out, backoff)

    def _count(self, out: _Out) -> None:
        """Count the outcome once the broker has the record: metrics count facts, not plans."""
        event_type, etype = out.tally
        kind = out.record.kind
        self._stats.count(
            out.msg.topic(), event_type, "retried" if kind == "retry" else "dead_lettered"
        )
        if etype is not None:
            self._stats.failure(kind, event_type, etype)


class _Out:
    """One retry/DLQ record on its way, shrunk if the broker finds it too large."""

    __slots__ = ("dropped", "failing", "msg", "record", "state", "tally")

    def __init__(
        self,
        msg: Record,
        state: PartitionState,
        record: OutgoingRecord,
        tally: tuple[str, str | None],
    ) -> None:
        self.msg, self.state, self.record, self.tally = msg, state, record, tally
        self.dropped = False  # sent without its value
        self.failing = False  # reported as failing to the health state

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.msg.topic(), self.msg.partition(), self.msg.offset())

    def shrink(self) -> bool:
        """Make the record smaller; False when nothing is left to shrink.

        First the failure headers (traceback, message); then, for the DLQ only, the value
        itself -- a dead letter with the reason and the original coordinates beats one that
        can never be written. A retry record keeps its value: it goes to the DLQ instead.
        """
        headers = self.record.headers
        if any(k == env.H_ERROR_TRACEBACK for k, _ in headers):
            self.record.headers = [_shrunk(k, v) for k, v in headers if k != env.H_ERROR_TRACEBACK]
            return True
        if self.record.kind == "dlq" and self.record.value is not None:
            size = len(self.record.value)
            self.record.value = None
            self.record.headers = [*headers, (H_VALUE_DROPPED, str(size).encode())]
            self.dropped = True
            return True
        return False


H_VALUE_DROPPED = "streamkit-value-dropped"  # the original value's size in bytes


def _shrunk(name: str, value: bytes) -> tuple[str, bytes]:
    if name == env.H_ERROR_MESSAGE and len(value) > 200:
        return name, value[:200]
    return name, value


def _where(out: _Out, error: BaseException) -> dict[str, object]:
    return {
        "topic": out.msg.topic(),
        "partition": out.msg.partition(),
        "offset": out.msg.offset(),
        "target": out.record.topic,
        "error": str(error),
    }


def _log_failure(
    msg: Record,
    headers: Headers | None,
    plan: FailurePlan,
    exc: BaseException,
    attempt: int,
    event_type: str,
    full: bool,
) -> None:
    retry = plan.kind == "retry"
    log.log(
        logging.DEBUG if retry else logging.WARNING,
        "event retried" if retry else "event dead-lettered",
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        event_type=env.header_str(headers, env.HEADER_EVENT_TYPE) or event_type,
        event_id=env.header_str(headers, env.HEADER_EVENT_ID),
        attempt=attempt,
        target=plan.topic,
        error_type=error_type(exc),
        error=error_message(exc, full=full)[:200],
    )
