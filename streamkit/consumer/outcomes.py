"""The failure path: a failed or bad record goes to a retry tier or the DLQ, acked first.

A failed record's source offset is done only once the broker acknowledged its copy in the
next stop; until then it is held (never committed). A failed publish is loud and retried
with backoff; a restart or the next owner of the partition handles the event again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import structlog

from streamkit import envelope as env
from streamkit.consumer.job import EventStats, Job
from streamkit.consumer.parking import LotKey, ParkingLot, parked_headers, record_id
from streamkit.consumer.state import PartitionState
from streamkit.delivery import Delivery
from streamkit.errors import PermanentError
from streamkit.handlers.publishing import EventPublisher
from streamkit.handlers.registry import UNKNOWN_EVENT_TYPE, HandlerSpec, Router
from streamkit.record import Headers, OutgoingRecord, Record
from streamkit.retry.failures import FailurePlan, FailurePlanner, error_type

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
    ) -> None:
        self._router = router
        self._planner = planner
        self._publisher = publisher
        self._stats = stats
        self._lot = lot
        self._loop = loop

    def fail(
        self,
        msg: Record,
        state: PartitionState,
        exc: BaseException,
        spec: HandlerSpec | None,
        attempt: int,
        event_type: str,
        ctx: Context | None = None,
    ) -> FailurePlan:
        """Send a failed record to its next stop; its offset is done once the broker has it."""
        policy = spec.retry if spec is not None and not isinstance(exc, PermanentError) else None
        plan = self._planner.plan(msg, exc, policy, attempt, state.tier)
        outcome = "retried" if plan.kind == "retry" else "dead_lettered"
        self._stats.count(msg.topic(), event_type, outcome)
        self._stats.failure(plan.kind, event_type, error_type(exc))
        # A retry is routine and counted in metrics: DEBUG, and only built when DEBUG is on,
        # or a burst of failures would cost a log line per event. A dead letter: WARNING.
        if plan.kind == "dlq" or DEBUG_LOG.isEnabledFor(logging.DEBUG):
            _log_failure(msg, plan, exc, attempt, event_type)
        self._send(msg, state, plan, event_type, ctx)
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
        self.fail(msg, state, exc, None, attempt, known)

    def park(self, job: Job, *, begun: bool) -> bool:
        """Keep-key-order: send ``job`` behind its key's head in a retry tier, if parked."""
        assert job.lot is not None
        msg, state = job.msg, job.state
        target = self._lot.park_target(job.lot, msg, state.tier)
        if target is None:
            return False
        if not begun:  # the inline path has not begun the offset yet
            state.tracker.begin(msg.offset(), msg.timestamp()[1])
        headers = parked_headers(msg, target)
        plan = FailurePlan("retry", target.topic, headers, 0.0, job.attempt, record_id(msg)[1])
        self._lot.parked(job.lot, state.tier)
        self._stats.count(msg.topic(), job.event_type, "retried")
        self._send(msg, state, plan, job.event_type, None)
        return True

    def track_parked(
        self, lot: LotKey, msg: Record, state: PartitionState, plan: FailurePlan
    ) -> None:
        """Keep-key-order: the key's head moved to ``plan``'s tier, or left the retry path."""
        if plan.kind == "retry":
            not_before = env.header_int(plan.headers, env.H_NOT_BEFORE) or 0
            self._lot.failed_to_tier(lot, msg, state.tier, plan.topic, not_before)
        else:
            self._lot.left(lot, msg, state.tier)

    # -- sending -----------------------------------------------------------------------

    def _send(
        self,
        msg: Record,
        state: PartitionState,
        plan: FailurePlan,
        event_type: str,
        ctx: Context | None,
    ) -> None:
        record = OutgoingRecord(
            plan.topic,
            msg.value(),
            key=msg.key(),
            headers=plan.headers,
            kind=plan.kind,
            event_type=event_type,
            partition=plan.partition,
        )
        self._publisher.prepare(record, ctx)  # publish hooks run once, not per resend
        state.ack_started()
        self._resend(msg, state, record, REPUBLISH_BACKOFF[0])

    def _resend(
        self, msg: Record, state: PartitionState, record: OutgoingRecord, backoff: float
    ) -> None:
        try:
            delivery = self._publisher.send_prepared(record)
        except Exception as exc:  # rejected locally: same handling as a failed delivery
            self._settled(msg, state, record, backoff, exc)
            return

        def acked(d: Delivery) -> None:
            self._loop.call_soon_threadsafe(
                self._settled, msg, state, record, backoff, d.exception()
            )

        delivery.add_done_callback(acked)

    def _settled(
        self,
        msg: Record,
        state: PartitionState,
        record: OutgoingRecord,
        backoff: float,
        error: BaseException | None,
    ) -> None:
        if error is None:
            state.tracker.finish(msg.offset())
            state.ack_ended()
            return
        # Loud, and never committed: the offset stays pending, so a restart or the next
        # owner handles the event again. We keep trying with backoff meanwhile.
        self._stats.publish_failed(record.kind)
        log.error(
            "retry/DLQ publish failed; offset not committed",
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
            target=record.topic,
            error=str(error),
            next_try_s=backoff,
        )
        if state.revoked:
            state.ack_ended()
            return
        next_backoff = min(backoff * 2, REPUBLISH_BACKOFF[1])
        self._loop.call_later(backoff, self._resend, msg, state, record, next_backoff)


def _log_failure(
    msg: Record, plan: FailurePlan, exc: BaseException, attempt: int, event_type: str
) -> None:
    retry = plan.kind == "retry"
    log.log(
        logging.DEBUG if retry else logging.WARNING,
        "event retried" if retry else "event dead-lettered",
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
