"""The :class:`Worker`: one consumer-group member running a router's handlers.

Threads: the event loop owns all state and runs handlers; one poll thread makes every
blocking ``consume``/``commit``/``close`` call, so rebalance callbacks (which librdkafka
runs inside those calls) can hand work to the loop and wait for it -- the loop is free
while it awaits the poll. One hop per batch, never per record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import confluent_kafka
import structlog
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamkit.config import Settings, redact
from streamkit.consumer.dispatch import Dispatcher
from streamkit.consumer.flow import FlowControl
from streamkit.consumer.rebalance import RebalanceBridge
from streamkit.consumer.state import PartitionState
from streamkit.consumer.stats import BatchStats
from streamkit.errors import ConfigError
from streamkit.handlers.registry import Router
from streamkit.observability.http import HealthState
from streamkit.observability.metrics import Metrics
from streamkit.ops.lag import messages_behind
from streamkit.producer.producer import Producer
from streamkit.retry.failures import FailurePlanner
from streamkit.retry.topics import Tier, tier_map

log = structlog.get_logger("streamkit.worker")

LAG_REFRESH = 5.0  # seconds between lag gauge refreshes
LAG_TIMEOUT = 5.0  # bound on each broker request of a lag refresh
CLIENT_ERROR_EVERY = 30.0  # log a repeating client error (broker down) at most this often
# librdkafka's own log lines, through logging instead of straight to stderr.
RDKAFKA_LOG = logging.getLogger("streamkit.librdkafka")


class Worker:
    """Consumes the router's topics (and its retry tiers) as one group member.

    Use :meth:`run` in an event loop; :meth:`stop` (thread- and signal-safe) drains
    in-flight events within ``shutdown_timeout``, commits, leaves the group and returns.
    """

    def __init__(
        self,
        router: Router,
        settings: Settings | None = None,
        *,
        metrics: Metrics | None = None,
        health: HealthState | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if not self.settings.group_id:
            raise ConfigError("no consumer group: set --group or STREAMKIT_GROUP_ID")
        if len(router) == 0:
            raise ConfigError("the router has no handlers")
        self.group: str = self.settings.group_id
        self.router = router
        self.sources = list(self.settings.topics or router.topics)
        if not self.sources:
            raise ConfigError("no topics: pass --topic, set STREAMKIT_TOPICS or Router(topics=)")
        self.tiers: dict[str, Tier] = tier_map(
            self.sources, self.group, router.retry_tiers, router.topic_names
        )
        self.metrics = metrics or Metrics()
        self.health = health or HealthState(stall_after=self.settings.stall_after)
        self.states: dict[tuple[str, int], PartitionState] = {}
        self._stopping = False
        self._polling_inline = False  # read by rebalance callbacks: which thread are we on
        self._error_seen: dict[str, float] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller = ThreadPoolExecutor(1, thread_name_prefix="streamkit-poll")
        self._lag_pool = ThreadPoolExecutor(1, thread_name_prefix="streamkit-lag")
        self._lag_job: Future[None] | None = None
        self._threads = ThreadPoolExecutor(
            self.settings.blocking_threads, thread_name_prefix="streamkit-blocking"
        )

    # -- lifecycle ---------------------------------------------------------------------

    def derived_topics(self) -> dict[str, str]:
        """Retry tiers and DLQs, each mapped to its source topic."""
        return self.router.derived_topics(self.sources, self.group)

    def required_topics(self) -> list[str]:
        """Every topic this worker reads or writes: sources, retry tiers, DLQs."""
        return [*self.sources, *self.derived_topics()]

    async def run(self) -> None:
        """Join the group and handle events until :meth:`stop`."""
        self._loop = asyncio.get_running_loop()
        self.metrics.prime(self.group)
        self.producer = Producer(
            self.settings.producer_settings(),
            topics=self.router.publish_topics | self.settings.publish_topics,
            default_topic=self.settings.default_publish_topic,
            on_delivery=self._on_delivery,
        )
        try:
            await self._consume()
        finally:
            self.producer.close(timeout=min(self.settings.shutdown_timeout, 10.0))
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._poller.shutdown(wait=False)
            self._lag_pool.shutdown(wait=False, cancel_futures=True)

    async def _consume(self) -> None:
        conf = self.settings.consumer_settings(self.group)
        conf["on_commit"] = self._on_commit
        conf["error_cb"] = self._on_client_error
        conf["logger"] = RDKAFKA_LOG
        keep_order = any(spec.keep_key_order for spec in self.router.handlers())
        if keep_order and conf["partition.assignment.strategy"] != "range":
            log.warning(
                "keep_key_order needs partition.assignment.strategy=range: partition N of a "
                "source and of its retry tiers may land on different members",
                strategy=conf["partition.assignment.strategy"],
            )
        log.info("starting", group=self.group, topics=list(self.tiers), settings=redact(conf))
        self.consumer = confluent_kafka.Consumer(conf)
        self.flow = FlowControl(
            self.consumer, self.settings.max_buffered, self.settings.max_pending_per_partition
        )
        self.stats = BatchStats(self.metrics, self.group)
        self.dispatcher = Dispatcher(
            router=self.router,
            producer=self.producer,
            planner=FailurePlanner(self.group, self.router.topic_names, self.router.retry_tiers),
            stats=self.stats,
            threads=self._threads,
            group=self.group,
            on_drained=self._check_flow,
            max_inflight=self.settings.max_inflight,
            drained_below=self.settings.max_buffered // 2,
        )
        bridge = RebalanceBridge(self)
        self.consumer.subscribe(
            list(self.tiers),
            on_assign=bridge.on_assign,
            on_revoke=bridge.on_revoke,
            on_lost=bridge.on_lost,
        )
        try:
            await self._poll_loop()
        finally:
            await self._shutdown()

    def stop(self) -> None:
        """Ask the worker to drain and leave; safe from signal handlers and other threads."""
        self._stopping = True

    async def _shutdown(self) -> None:
        bound = self.settings.shutdown_timeout
        states = list(self.states.values())
        log.info("stopping", inflight=self.dispatcher.running, timeout_s=bound)
        await self._drain_while_polling(states, bound)
        self.stats.flush()
        # Only partitions still ours: one revoked during the drain was committed by its
        # revoke callback, and may belong to another member now.
        owned = [s for s in states if not s.revoked]
        await self._in_poll_thread(self._commit_sync, self._positions(owned))
        if self._lag_job is not None:  # never close the consumer under a lag request
            await asyncio.wait([asyncio.wrap_future(self._lag_job)], timeout=2 * LAG_TIMEOUT)
        # close() runs the revoke callback, which needs the loop: call it from the poll thread.
        await self._in_poll_thread(self.consumer.close)
        self.metrics.ready.labels(self.group).set(0)
        self.health.set_ready(False)
        log.info("stopped", group=self.group)

    async def _drain_while_polling(self, states: list[PartitionState], bound: float) -> None:
        """Drain with every partition paused while polling goes on.

        A drain longer than ``max.poll.interval.ms`` without polling would get us kicked
        out of the group, and then the final commit would be refused.
        """
        self.flow.pause_all(states)
        drained = asyncio.ensure_future(self.drain(states, bound))
        while not drained.done():
            # Paused partitions return nothing; anything else is simply not handled now
            # (not tracked, so not committed: the next owner reads it).
            await self._in_poll_thread(self.consumer.poll, 0.05)
        await drained

    async def drain(self, states: list[PartitionState], bound: float) -> None:
        """Wait for the in-flight work of ``states`` up to ``bound``; cancel what is left."""
        waits = [asyncio.ensure_future(s.wait_idle()) for s in states if s.busy]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=bound)
            for fut in pending:
                fut.cancel()
        # Finished tasks may still sit in s.tasks until their done-callback runs.
        leftovers = [task for s in states for task in s.tasks if not task.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.wait(leftovers, timeout=1.0)

    # -- the poll loop -----------------------------------------------------------------

    async def _poll_loop(self) -> None:
        next_commit = time.monotonic() + self.settings.commit_interval
        next_lag = time.monotonic() + LAG_REFRESH
        while not self._stopping:
            self.health.beat()
            self.flow.resume_due()
            msgs = self._poll_now() if self.dispatcher.idle else None
            if not msgs:
                msgs = await self._in_poll_thread(self._poll, self._poll_timeout())
            if msgs:
                self._dispatch(msgs)
            elif self.flow.backpressure:
                self._check_flow()
            self.stats.flush()
            self.metrics.child(self.metrics.inflight, self.group).set(self.dispatcher.running)
            now = time.monotonic()
            if now >= next_commit:
                self._commit_async()
                next_commit = now + self.settings.commit_interval
            if now >= next_lag:
                self._refresh_lag()
                next_lag = now + LAG_REFRESH

    def _poll_timeout(self) -> float:
        timeout = self.settings.poll_timeout
        due = self.flow.next_due_in()
        return timeout if due is None else min(timeout, due)

    def _poll_now(self) -> list[Any]:
        """Take what is ready without leaving the loop thread (no thread hop).

        Only while nothing is in flight: a rebalance callback fired from here runs on the
        loop thread and cannot wait for work -- and with nothing in flight it has none.
        """
        self._polling_inline = True
        try:
            msgs: list[Any] = self.consumer.consume(self.settings.batch_size, 0)
        finally:
            self._polling_inline = False
        return msgs

    def _poll(self, timeout: float) -> list[Any]:
        """Runs in the poll thread: a batch of what is there, else wait for the first one.

        ``consume(n, timeout)`` waits for n records or the whole timeout; asking for what
        is ready first and then blocking on a single record keeps latency low when traffic
        is light and batches large when it is heavy.
        """
        batch = self.settings.batch_size
        msgs: list[Any] = self.consumer.consume(batch, 0)
        if msgs:
            return msgs
        first = self.consumer.poll(timeout)
        if first is None:
            return []
        return [first, *self.consumer.consume(batch - 1, 0)]

    def _dispatch(self, msgs: list[Any]) -> None:
        states, flow, handle = self.states, self.flow, self.dispatcher.handle
        last: dict[PartitionState, Any] = {}
        for msg in msgs:
            if msg.error() is not None:
                self._on_record_error(msg.error())
                continue
            state = states.get((msg.topic(), msg.partition()))
            if state is None or state.gated:
                continue  # revoked meanwhile, or sought back to a retry record not yet due
            if state.tier.n and flow.gate(msg, state):
                continue
            handle(msg, state)
            last[state] = msg
        for state, msg in last.items():  # for the lag-seconds estimate, once per batch
            state.tracker.last_timestamp = msg.timestamp()[1]
        self._check_flow()

    def _check_flow(self) -> None:
        self.flow.check(self.dispatcher.buffered, list(self.states.values()))

    async def _in_poll_thread(self, fn: Any, *args: Any) -> Any:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._poller, fn, *args)

    # -- commits -----------------------------------------------------------------------

    def _positions(self, states: list[PartitionState]) -> list[TopicPartition]:
        return [
            TopicPartition(s.topic, s.partition, s.tracker.position)
            for s in states
            if s.tracker.position >= 0 and s.tracker.needs_commit()
        ]

    def _commit_async(self) -> None:
        offsets = self._positions(list(self.states.values()))
        if not offsets:
            return
        try:
            self.consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:
            self._commit_failed(exc)
            return
        for tp in offsets:
            self.states[(tp.topic, tp.partition)].tracker.committed = tp.offset

    def _commit_sync(self, offsets: list[TopicPartition]) -> bool:
        """Blocking commit (poll thread): on revoke and at shutdown."""
        if not offsets:
            return True
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            self._commit_failed(exc)
            return False
        self.metrics.child(self.metrics.commits, self.group, "ok").inc()
        for tp in offsets:
            state = self.states.get((tp.topic, tp.partition))
            if state is not None:  # a plain int store; the loop only reads it
                state.tracker.committed = tp.offset
        return True

    def _commit_failed(self, exc: BaseException) -> None:
        self.metrics.child(self.metrics.commits, self.group, "failed").inc()
        log.error("offset commit failed", group=self.group, error=str(exc))

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        # Runs in the poll thread for asynchronous commits.
        if err is None or err.code() == KafkaError._NO_OFFSET:
            self.metrics.child(self.metrics.commits, self.group, "ok").inc()
            return
        self._commit_failed(KafkaException(err))
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._recommit, partitions)

    def _recommit(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            state = self.states.get((tp.topic, tp.partition))
            if state is not None:
                state.tracker.committed = -1  # commit it again at the next interval

    # -- observability -----------------------------------------------------------------

    def _on_delivery(self, outcome: str, latency: float) -> None:
        self.metrics.child(self.metrics.produced, outcome).inc()
        self.metrics.produce_latency.observe(latency)

    def _on_client_error(self, err: KafkaError) -> None:
        # librdkafka reports a down broker once per connection attempt; say it once a while.
        now = time.monotonic()
        if now - self._error_seen.get(err.name(), -CLIENT_ERROR_EVERY) < CLIENT_ERROR_EVERY:
            return
        self._error_seen[err.name()] = now
        log.warning("kafka client error", error=err.str(), code=err.name(), fatal=err.fatal())

    def _on_record_error(self, err: KafkaError) -> None:
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consume error", error=err.str(), code=err.name())

    def _refresh_lag(self) -> None:
        """Ask the broker (off the loop, in the lag thread) for end and committed offsets.

        Cached watermarks only move while a partition is fetched, so a paused partition --
        backpressure, a retry tier waiting -- would freeze its lag exactly when it matters.
        """
        if self._lag_job is not None and not self._lag_job.done():
            return  # the previous refresh is still talking to the broker
        tps = [TopicPartition(s.topic, s.partition) for s in self.states.values()]
        if tps:
            self._lag_job = self._lag_pool.submit(self._fetch_marks, tps)

    def _fetch_marks(self, tps: list[TopicPartition]) -> None:
        marks: dict[tuple[str, int], tuple[int, int]] = {}
        try:
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in self.consumer.committed(tps, timeout=LAG_TIMEOUT)
            }
            for tp in tps:
                _, high = self.consumer.get_watermark_offsets(tp, timeout=LAG_TIMEOUT)
                marks[(tp.topic, tp.partition)] = (
                    high,
                    committed.get((tp.topic, tp.partition), -1),
                )
        except (KafkaException, RuntimeError) as exc:  # RuntimeError: consumer closed
            log.debug("lag refresh failed", error=str(exc))
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._apply_lag, marks)

    def _apply_lag(self, marks: dict[tuple[str, int], tuple[int, int]]) -> None:
        now_ms = time.time() * 1000
        for key, (high, committed) in marks.items():
            state = self.states.get(key)
            if state is None or high < 0:
                continue  # revoked meanwhile
            lag, lag_s = _lag(state, high, committed, now_ms)
            self.metrics.set_partition_lag(self.group, state.topic, state.partition, lag, lag_s)


def _lag(state: PartitionState, high: int, committed: int, now_ms: float) -> tuple[int, float]:
    """Messages and seconds behind for one partition (see the metric docs).

    Lag is measured from the group's committed offset as the broker has it; before the
    group ever committed, from what this member has handled (or 0 records handled).
    """
    tracker = state.tracker
    lag = messages_behind(high, committed, max(tracker.position, 0))
    oldest = state.tracker.oldest_pending_timestamp()
    if oldest is not None:
        return lag, max(now_ms - oldest, 0) / 1000
    if lag == 0:
        return 0, 0.0
    # Behind, nothing in flight: the next record is no older than the last one handled.
    return lag, max(now_ms - state.tracker.last_timestamp, 0) / 1000
