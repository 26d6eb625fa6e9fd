"""One function builds the event pipeline, for the real worker and the in-memory broker alike.

Router (routing, codec, middleware) -> dispatcher (scheduling) -> failure path (retry
tiers, DLQ) -> commit owner (positions, commits). :class:`~streamkit.Worker` and
:class:`~streamkit.testing.TestBroker` differ only in what they pass: a Kafka producer or
in-memory topics as the publisher, a Kafka consumer or a dict as the committer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

from streamkit.consumer.commits import CommitOwner, KafkaCommits
from streamkit.consumer.dispatch import Dispatcher
from streamkit.consumer.handoff import Handoff
from streamkit.consumer.job import EventStats
from streamkit.consumer.outcomes import FailurePath
from streamkit.consumer.parking import ParkingLot
from streamkit.consumer.state import Load
from streamkit.handlers.chain import MiddlewareChain
from streamkit.handlers.middleware import Middleware
from streamkit.handlers.publishing import EventPublisher
from streamkit.handlers.registry import Router
from streamkit.record import Emitting, Publisher
from streamkit.retry.failures import FailurePlanner
from streamkit.retry.topics import Tier

CommitsFactory = Callable[[dict[str, Tier], Load], CommitOwner]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The parts of one worker's event pipeline."""

    router: Router
    publisher: EventPublisher
    dispatcher: Dispatcher
    failures: FailurePath
    commits: CommitOwner
    lot: ParkingLot
    load: Load
    stats: EventStats


def build_pipeline(
    router: Router,
    publisher: Publisher,
    *,
    group: str,
    tiers: dict[str, Tier],
    stats: EventStats,
    threads: Executor,
    max_inflight: int,
    load: Load | None = None,
    commits: CommitsFactory | None = None,
    on_publish: Callable[[tuple[str, int, int], str | None], None] | None = None,
    full_errors: bool = False,
    extra_middleware: Sequence[Middleware] = (),
    handoff: Handoff | None = None,
    emitter: Emitting | None = None,
) -> Pipeline:
    """Wire a router's handlers to ``publisher`` for consumer group ``group``.

    Call on the event loop that will run the handlers. ``commits`` makes the commit owner
    (default: :class:`KafkaCommits`); attach its client before the first assignment.
    ``on_publish(record id, reason)`` hears of retry/DLQ publishes failing (reason) and
    recovering (None): the worker's health check. ``handoff`` brings delivery reports to
    the loop; give the same one to the producer as its ``on_settled`` (``handoff.settled``)
    so a wait for an acknowledgement takes no lock. ``emitter`` sends ``ctx.emit``'s
    records (confirmed at commit points; the commit owner must confirm them), else they
    are published and tracked as ``ctx.publish``'s.
    """
    load = load or Load()
    loop = asyncio.get_running_loop()
    chain = MiddlewareChain([*router.middleware, *extra_middleware])
    events = EventPublisher(publisher, router.codec, chain, emitter)
    lot = ParkingLot()
    handoff = handoff or Handoff(loop)
    failures = FailurePath(
        router=router,
        planner=FailurePlanner(group, router.topic_names, router.retry_tiers, full_errors),
        publisher=events,
        stats=stats,
        lot=lot,
        loop=loop,
        handoff=handoff,
        **({"on_publish": on_publish} if on_publish is not None else {}),
    )
    dispatcher = Dispatcher(
        router=router,
        publisher=events,
        failures=failures,
        handoff=handoff,
        lot=lot,
        stats=stats,
        threads=threads,
        group=group,
        max_inflight=max_inflight,
        load=load,
    )
    owner = (commits or _kafka_commits)(tiers, load)
    return Pipeline(router, events, dispatcher, failures, owner, lot, load, stats)


def _kafka_commits(tiers: dict[str, Tier], load: Load) -> CommitOwner:
    return KafkaCommits(tiers, load)
