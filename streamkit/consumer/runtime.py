"""The :class:`Worker`: one consumer-group member running a router's handlers.

Threads: the event loop owns all state and runs handlers; one poll thread makes every
blocking ``consume``/``commit``/``close`` call (and flow control's pause/resume), so
rebalance callbacks (which librdkafka runs inside those calls) can hand work to the loop
and wait for it -- the loop is free while it awaits the poll. One hop per batch, never
per record. This module assembles the parts and runs the poll loop.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from functools import partial
from typing import Any, cast

import confluent_kafka
import structlog
from confluent_kafka import TopicPartition

from streamkit.clientlog import RDKAFKA_LOG
from streamkit.config import Settings
from streamkit.consumer.commits import CommitOwner, Committer
from streamkit.consumer.confirmed import ConfirmedCommits
from streamkit.consumer.dispatch import Dispatcher
from streamkit.consumer.flow import FlowControl, logged
from streamkit.consumer.gcpolicy import worker_gc
from streamkit.consumer.handoff import Handoff
from streamkit.consumer.lagwatch import LagWatch
from streamkit.consumer.pipeline import CommitsFactory, Pipeline, build_pipeline
from streamkit.consumer.pollthread import DaemonExecutor, PollThread
from streamkit.consumer.quiesce import CommitPoint
from streamkit.consumer.rebalance import RebalanceBridge
from streamkit.consumer.reporting import WorkerReports
from streamkit.consumer.startup import check_consumer_conf, log_start
from streamkit.consumer.state import Load, PartitionState, drain
from streamkit.consumer.transactional import TransactionalCommits
from streamkit.errors import ConfigError
from streamkit.handlers.chain import close_all
from streamkit.handlers.registry import Router
from streamkit.membership import fatal_reason, fenced_error
from streamkit.observability.http import HealthState
from streamkit.observability.metrics import Metrics
from streamkit.observability.stats import BatchStats
from streamkit.producer.emitter import Emitter
from streamkit.producer.producer import Producer
from streamkit.record import Record
from streamkit.retry.topics import Tier, tier_map

log = structlog.get_logger("streamkit.worker")

LAG_REFRESH = 5.0  # seconds between lag gauge refreshes
FINAL_STEP = 2.0  # seconds the final commit and the group leave get at least, each


class Worker:
    """Consumes the router's topics (and its retry tiers) as one group member.

    Use :meth:`run` in an event loop; :meth:`stop` (thread- and signal-safe) drains
    in-flight events within ``shutdown_timeout``, commits, leaves the group and returns.
    ``commits`` replaces the commit owner (``(tiers, load) -> CommitOwner``): a second
    commit mode is one implementation of :class:`~streamkit.consumer.commits.CommitOwner`.
    """

    def __init__(
        self,
        router: Router,
        settings: Settings | None = None,
        *,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
        commits: CommitsFactory | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._commits_factory = commits or self._kafka_commits
        if not self.settings.group_id:
            raise ConfigError("no consumer group: set --group or STREAMKIT_GROUP_ID")
        if len(router) == 0:
            raise ConfigError("the router has no handlers")
        self.group: str = self.settings.group_id
        if self.settings.on_unknown is not None:  # --on-unknown / STREAMKIT_ON_UNKNOWN
            router.on_unknown = self.settings.on_unknown
        self.router = router
        self.sources = list(self.settings.topics or router.topics)
        if not self.sources:
            raise ConfigError("no topics: pass --topic, set STREAMKIT_TOPICS or Router(topics=)")
        self.tiers: dict[str, Tier] = tier_map(
            self.sources, self.group, router.retry_tiers, router.topic_names
        )
        self.metrics = metrics or Metrics()
        self.reports = WorkerReports(self.metrics, self.group)
        self.health = health or HealthState(stall_after=self.settings.stall_after)
        self._stopping = False
        self.stuck = False  # a shutdown step outlived its bound (see streamkit run)
        # Daemon threads: a blocking=True handler stuck past the shutdown bound must not
        # keep the process alive (its event is not committed; the next owner handles it).
        self._threads = DaemonExecutor(self.settings.blocking_threads, "streamkit-blocking")

    # -- lifecycle ---------------------------------------------------------------------

    def derived_topics(self) -> dict[str, str]:
        """Retry tiers and DLQs, each mapped to its source topic."""
        return self.router.derived_topics(self.sources, self.group)

    def required_topics(self) -> list[str]:
        """Every topic this worker reads or writes: sources, retry tiers, DLQs."""
        return [*self.sources, *self.derived_topics()]

    @property
    def states(self) -> dict[tuple[str, int], PartitionState]:
        """The assigned partitions' states (owned by the commit owner)."""
        return self.pipeline.commits.states

    async def run(self) -> None:
        """Join the group and handle events until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        self._handoff = Handoff(loop)  # delivery reports reach the loop through it
        self.metrics.prime(self.group, self.sources, [h.event_type for h in self.router.handlers()])
        for mw in self.router.middleware:  # middleware that counts (dedupe) gets the metrics
            mw.bind(self.metrics, self.group)
        self.producer = Producer(
            self._producer_conf(),
            topics=self.router.publish_topics | self.settings.publish_topics,
            default_topic=self.settings.default_publish_topic,
            on_delivery=self.reports.delivery,
            codec=self.router.codec,
            on_settled=self._handoff.settled,
        )
        # ctx.emit's producer, made now: made on the first emit, it set up (metadata,
        # producer id) while the loop took the CPU, and the first commit point's flush
        # waited 0.2-0.7 s for it (scenario 8). Exactly-once sends everything through
        # the transactional producer instead.
        # Under a commit owner of the user's, they are tracked as ctx.publish's are: it
        # would not know to confirm them before committing.
        own = self._commits_factory == self._kafka_commits
        self.emitter = Emitter(self._producer_conf()) if own and not self.exactly_once else None
        if self.emitter is not None:
            self.emitter.start()
        self.poll = PollThread(loop)
        try:
            self.pipeline = self._build(self.producer)
            await self._consume(loop)
        finally:
            await close_all(self.router.middleware)  # a dedupe store's connections
            self.producer.close(timeout=min(self.settings.shutdown_timeout, FINAL_STEP))
            if self.emitter is not None:  # after the last commit: what is left is unconfirmed
                self.emitter.close(timeout=FINAL_STEP)
            self.reports.flush_deliveries()  # what the close's flush acknowledged
            self._threads.shutdown(wait=False, cancel_futures=True)
            self.poll.shutdown()

    @property
    def exactly_once(self) -> bool:
        """True in exactly-once mode (``--guarantee exactly-once``)."""
        return self.settings.guarantee == "exactly-once"

    def _producer_conf(self) -> dict[str, Any]:
        conf = self.settings.producer_settings()
        if self.exactly_once:
            tid = self.settings.transactional_id or f"streamkit-{self.group}-{uuid.uuid4().hex[:8]}"
            # A transaction left open by a crash blocks read_committed readers until it
            # times out (a stable transactional_id aborts it at restart instead).
            conf = {"transaction.timeout.ms": 30_000, **conf, "transactional.id": tid}
        return conf

    def _build(self, producer: Producer) -> Pipeline:
        self.stats = BatchStats(self.metrics, self.group)
        load = Load(lambda: self._check_flow(), self.settings.max_buffered // 2)
        return build_pipeline(
            self.router,
            producer,
            group=self.group,
            tiers=self.tiers,
            stats=self.stats,
            threads=self._threads,
            max_inflight=self.settings.max_inflight,
            load=load,
            commits=self._commits_factory,
            on_publish=self.health.publish_problem,
            full_errors=self.settings.error_details == "full",
            handoff=self._handoff,
            emitter=self.emitter,
        )

    def _kafka_commits(self, tiers: dict[str, Tier], load: Load) -> CommitOwner:
        if self.exactly_once:
            return TransactionalCommits(
                tiers,
                load,
                producer=self.producer.client,
                timeout=max(self.settings.revoke_timeout, 10.0),
                on_transaction=self.reports.transaction,
                group=self.group,
                failed=lambda: self.producer.failed,
                refused=lambda: self.producer.refused,
            )
        assert self.emitter is not None
        return ConfirmedCommits(
            tiers,
            load,
            confirmer=self.emitter,
            timeout=max(self.settings.revoke_timeout, 10.0),
            on_result=self.reports.commit,
            group=self.group,
        )

    async def _consume(self, loop: asyncio.AbstractEventLoop) -> None:
        conf = self._consumer_conf()
        self.consumer = confluent_kafka.Consumer(conf)
        # cast: the client's typed overloads split asynchronous=True/False; both are used.
        self.pipeline.commits.attach(cast(Committer, self.consumer), loop)
        if isinstance(self.pipeline.commits, TransactionalCommits):
            await self.poll.call(self.pipeline.commits.start)  # init_transactions blocks
        self.flow = FlowControl(
            self.consumer,
            self.settings.max_buffered,
            self.settings.max_pending_per_partition,
            partial(self.poll.later, logged),  # pause/resume/seek: never on the loop thread
        )
        self.pipeline.dispatcher.gate = self.flow.gate
        self.lag = LagWatch(
            self.settings.producer_settings(), self.group, self.states, self.reports.lag, loop
        )
        bridge = RebalanceBridge(
            poll=self.poll,
            commits=self.pipeline.commits,
            drain=drain,
            detached=self._detached,
            rebalanced=self._rebalanced,
            revoke_timeout=self.settings.revoke_timeout,
            held=lambda: self.flow.backpressure,
            settle=self._settle_acks,
        )
        self.consumer.subscribe(
            list(self.tiers),
            on_assign=bridge.on_assign,
            on_revoke=bridge.on_revoke,
            on_lost=bridge.on_lost,
        )
        log.info("waiting for partition assignment", group=self.group)
        with worker_gc():
            try:
                await self._poll_loop()
            finally:
                await self._shutdown()
        if self.reports.fatal is not None:  # fenced: one line, exit non-zero (streamkit run)
            raise fenced_error(fatal_reason(self.reports.fatal.str()), conf)

    def _consumer_conf(self) -> dict[str, Any]:
        conf = self.settings.consumer_settings(self.group)
        conf["on_commit"] = self.pipeline.commits.on_commit
        conf["error_cb"] = self.reports.client_error
        check_consumer_conf(conf, self.router, exactly_once=self.exactly_once)
        log_start(conf, self.router, self.settings, self.group, list(self.tiers))
        conf["logger"] = RDKAFKA_LOG
        return conf

    def stop(self) -> None:
        """Ask the worker to drain and leave; safe from signal handlers and other threads."""
        self._stopping = True

    async def _shutdown(self) -> None:
        """Drain, commit, leave: every step bounded, so SIGTERM always ends in time.

        The drain gets ``shutdown_timeout``; the final commit and leaving the group get
        what is left of it, at least FINAL_STEP seconds each (a broker that is down must
        not hold the exit: what was not committed is handled again by the next owner).
        """
        # Fenced (exactly-once, or a static member): nothing can be committed any more.
        fenced = getattr(self.pipeline.commits, "fatal", None) is not None
        fenced = fenced or self.reports.fatal is not None
        bound = 0.0 if fenced else self.settings.shutdown_timeout
        deadline = time.monotonic() + bound
        states = list(self.states.values())
        log.info("stopping", inflight=self.pipeline.dispatcher.running, timeout_s=bound)
        abandoned = await self._drain_while_polling(states, bound)
        if abandoned:
            self.reports.abandoned(abandoned, bound)
        self.stats.flush()
        self.lag.stop()
        # Only partitions still ours: one revoked during the drain was committed by its
        # revoke callback, and may belong to another member now.
        commits = self.pipeline.commits
        owned = commits.positions(s for s in states if not s.revoked)
        if not await self._bounded(commits.commit_sync, owned, deadline=deadline):
            log.warning("final commit did not finish in time; events after the last commit "
                        "will be handled again", offsets=len(owned))  # fmt: skip
        self._count_emitted()
        # close() runs the revoke callback, which needs the loop: call it from the poll thread.
        if not await self._bounded(self.consumer.close, deadline=deadline):
            log.warning("leaving the group did not finish in time")
        self.metrics.ready.labels(self.group).set(0)
        self.health.set_ready(False)
        log.info("stopped", group=self.group)

    async def _bounded(self, fn: Any, *args: Any, deadline: float) -> bool:
        """Run a client call in the poll thread; False if it did not return in time."""
        left = max(deadline - time.monotonic(), FINAL_STEP)
        try:
            await asyncio.wait_for(asyncio.shield(self.poll.call(fn, *args)), left)
        except TimeoutError:
            self.stuck = True  # the call goes on in the (daemon) poll thread
            return False
        return True

    async def _drain_while_polling(
        self, states: list[PartitionState], bound: float
    ) -> list[PartitionState]:
        """Drain with every partition paused while polling goes on.

        A drain longer than ``max.poll.interval.ms`` without polling would get us kicked
        out of the group, and then the final commit would be refused.
        """
        self.flow.pause_all(states)
        drained = asyncio.ensure_future(drain(states, bound))
        while not drained.done():
            # Paused partitions return nothing; anything else is simply not handled now
            # (not tracked, so not committed: the next owner reads it).
            await self.poll.call(self.consumer.poll, 0.05)
        return await drained

    # -- the poll loop -----------------------------------------------------------------

    async def _poll_loop(self) -> None:
        next_commit = time.monotonic() + self.settings.commit_interval
        next_lag = time.monotonic() + LAG_REFRESH
        dispatcher = self.pipeline.dispatcher
        while not self._stopping and self.reports.fatal is None:
            self.health.beat()
            self.flow.resume_due()
            msgs = self._poll_now() if self._may_poll_now(dispatcher) else None
            if not msgs:
                msgs = await self.poll.call(self._poll, self._poll_timeout())
            elif dispatcher.load.acks:
                # Their ack callbacks wait for a loop turn, which an inline poll never
                # gives: one here, per batch (without it they pile up unacknowledged).
                await asyncio.sleep(0)
            if msgs:
                self._dispatch(msgs)
                self.producer.serve_reports()  # see there: no GIL hand-off per report
            elif self.flow.backpressure:
                self._check_flow()
            self.stats.flush()
            self.reports.flush_deliveries()
            self.metrics.child(self.metrics.inflight, self.group).set(dispatcher.running)
            now = time.monotonic()
            # A doomed transaction (exactly-once, a send failed) is aborted at once.
            if now >= next_commit or getattr(self.pipeline.commits, "doomed", False):
                await self._commit_point()
                next_commit = time.monotonic() + self.settings.commit_interval
            if now >= next_lag:
                self.lag.refresh()
                next_lag = now + LAG_REFRESH

    async def _commit_point(self) -> None:
        """Commit what is done: batched async commits, or (exactly-once) a transaction."""
        commits = self.pipeline.commits
        if isinstance(commits, ConfirmedCommits):  # records emitted: confirmed first
            await commits.commit_point(self.poll, self._detached)
            self._count_emitted()
            return
        if not isinstance(commits, TransactionalCommits):
            commits.commit_due()
            return
        await CommitPoint(commits=commits, poll=self.poll, detached=self._detached).run()

    def _count_emitted(self) -> None:
        if self.emitter is not None:
            self.reports.emitted(*self.emitter.take_counts())

    def _poll_timeout(self) -> float:
        timeout = self.settings.poll_timeout
        due = self.flow.next_due_in()
        return timeout if due is None else min(timeout, due)

    def _may_poll_now(self, dispatcher: Dispatcher) -> bool:
        """Poll on the loop thread: nothing in flight, or (at-least-once) only failure
        records awaiting their acks -- a rebalance callback settles those first. Not
        while one waits out a backoff (its publish failed): flushing cannot settle it."""
        if dispatcher.idle:
            return True
        return dispatcher.quiet and not self.exactly_once and not dispatcher.load.resending

    def _poll_now(self) -> list[Record]:
        """Take what is ready without leaving the loop thread (no thread hop).

        A rebalance callback fired from here runs on the loop thread and cannot wait for
        work. With nothing in flight it has none; with retry/DLQ records awaiting their
        acks, it first waits for those right here (:meth:`_settle_acks`).

        Why it pays: each hop to the poll thread and back cost ~1.5 ms a batch under the
        failure scenario (bench s4; 0.2 ms here), a quarter of its wall time, while the
        acks of a few failure records were all that kept the worker from polling here.
        """
        with self.poll.inline():
            msgs = self.consumer.consume(self.settings.batch_size, 0)
        return cast(list[Record], msgs)

    def _settle_acks(self, timeout: float) -> None:
        """Before a rebalance callback's work, inside a poll on the loop thread: wait
        (bounded) for the failure records still awaiting acks, and run their callbacks.

        Until only those waiting out a backoff (their publish failed) are left, or
        ``timeout``: what is still pending then is abandoned by the revoke, its offset
        not committed (the next owner handles the event again: at-least-once).
        """
        load = self.pipeline.load
        deadline = time.monotonic() + timeout
        while load.acks > load.resending and time.monotonic() < deadline:
            self.producer.flush(max(deadline - time.monotonic(), 0.0))
            self._handoff.run_now()  # the ack callbacks; a too-large record is resent

    def _poll(self, timeout: float) -> list[Record]:
        """Runs in the poll thread: a batch of what is there, else wait for the first one.

        ``consume(n, timeout)`` waits for n records or the whole timeout; asking for what
        is ready first and then blocking on a single record keeps latency low when traffic
        is light and batches large when it is heavy.
        """
        batch = self.settings.batch_size
        msgs = self.consumer.consume(batch, 0)
        if not msgs:
            first = self.consumer.poll(timeout)
            if first is None:
                return []
            msgs = [first, *self.consumer.consume(batch - 1, 0)]
        # A Message is a Record (the client's stubs type its accessors more loosely).
        return cast(list[Record], msgs)

    def _dispatch(self, msgs: list[Record]) -> None:
        self.pipeline.dispatcher.take_batch(msgs, self.states, self.reports.record_error)
        self._check_flow()

    def _check_flow(self) -> None:
        self.flow.check(self.pipeline.load.buffered, list(self.states.values()))

    # -- rebalance hooks ---------------------------------------------------------------

    def _detached(self, state: PartitionState) -> None:
        self.flow.forget(state)
        if state.tier.n == 0:
            self.pipeline.lot.drop_partition(state.topic, state.partition)
        self.metrics.forget_partition(self.group, state.topic, state.partition)

    def _mark_ready(self) -> None:
        if self._stopping:
            return
        self.health.set_ready(True)
        self.metrics.child(self.metrics.ready, self.group).set(1)

    def _rebalanced(self, kind: str, partitions: list[TopicPartition]) -> None:
        m = self.metrics
        if kind == "assigned":
            # Ready once the new partitions' lag is known (one broker round trip, bounded by
            # LAG_TIMEOUT): a scrape right after readiness then has every lag series.
            self.lag.refresh(then=self._mark_ready)
        else:
            self.stats.flush()
        m.child(m.rebalances, self.group, kind).inc()
        m.child(m.assigned_partitions, self.group).set(len(self.states))
        log.info(
            "partitions " + kind,
            group=self.group,
            partitions=[f"{tp.topic}[{tp.partition}]" for tp in partitions],
            assigned=len(self.states),
        )
