"""The lag gauges: end and committed offsets from the broker, off the event loop.

Cached watermarks only move while a partition is fetched, so a paused partition --
backpressure, a retry tier waiting -- would freeze its lag exactly when it matters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from streamkit.clientlog import RDKAFKA_LOG
from streamkit.consumer.state import PartitionState
from streamkit.positions import messages_behind

log = structlog.get_logger("streamkit.worker")

LAG_TIMEOUT = 5.0  # bound on each broker request of a lag refresh
Marks = dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> (end, committed)
Gauge = Callable[[str, int, int, float], None]  # topic, partition, messages, seconds
LATEST: Any = OffsetSpec.latest()  # type: ignore[no-untyped-call]


class LagWatch:
    """Refreshes the lag gauges of the assigned partitions, one refresh at a time.

    Two broker requests per refresh, whatever the partition count (``ListOffsets`` and
    ``OffsetFetch`` for all at once), on its own admin client: shutdown never waits for it
    and the consumer is never called from another thread.
    """

    def __init__(
        self,
        client_settings: dict[str, Any],
        group: str,
        states: dict[tuple[str, int], PartitionState],
        set_lag: Gauge,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        conf: dict[str, Any] = {**client_settings, "logger": RDKAFKA_LOG}
        self._admin = AdminClient(conf)
        self._group = group
        self._states = states
        self._set_lag = set_lag
        self._loop = loop
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="streamkit-lag")
        self._job: Future[None] | None = None
        self._waiters: list[Callable[[], None]] = []  # called once the refresh is through

    def refresh(self, then: Callable[[], None] | None = None) -> None:
        """Ask the broker for fresh offsets, unless the previous request is still out.

        ``then`` is called on the loop once the gauges are set (or the refresh failed):
        a new assignment waits for its first lag figures before the worker says ready, so
        the lag series exist from the first scrape after start-up.
        """
        if then is not None:
            self._waiters.append(then)
        if self._job is not None and not self._job.done():
            return
        tps = [TopicPartition(s.topic, s.partition) for s in self._states.values()]
        if tps:
            self._job = self._pool.submit(self._fetch, tps)
        else:
            self._through()

    def stop(self) -> None:
        """Stop refreshing; a request in flight is left to finish on its own (daemon)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fetch(self, tps: list[TopicPartition]) -> None:
        try:
            ends = self._admin.list_offsets({tp: LATEST for tp in tps}, request_timeout=LAG_TIMEOUT)
            request = [ConsumerGroupTopicPartitions(self._group, tps)]
            done = self._admin.list_consumer_group_offsets(request, request_timeout=LAG_TIMEOUT)
            found = done[self._group].result(LAG_TIMEOUT).topic_partitions or []
            committed = {(tp.topic, tp.partition): tp.offset for tp in found}
            marks: Marks = {
                (tp.topic, tp.partition): (
                    f.result(LAG_TIMEOUT).offset,
                    committed.get((tp.topic, tp.partition), -1),
                )
                for tp, f in ends.items()
            }
        except (KafkaException, RuntimeError) as exc:
            log.debug("lag refresh failed", error=str(exc))
            marks = {}
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._apply, marks)

    def _apply(self, marks: Marks) -> None:
        now_ms = time.time() * 1000
        for key, (high, committed) in marks.items():
            state = self._states.get(key)
            if state is None or high < 0:
                continue  # revoked meanwhile
            lag, lag_s = partition_lag(state, high, committed, now_ms)
            self._set_lag(state.topic, state.partition, lag, lag_s)
        self._through()

    def _through(self) -> None:
        waiters, self._waiters = self._waiters, []
        for then in waiters:
            then()


def partition_lag(
    state: PartitionState, high: int, committed: int, now_ms: float
) -> tuple[int, float]:
    """Messages and seconds behind for one partition (see the metric docs).

    Lag is measured from the group's committed offset as the broker has it; before the
    group ever committed, from what this member has handled (or 0 records handled).
    """
    tracker = state.tracker
    lag = messages_behind(high, committed, max(tracker.position, 0))
    oldest = tracker.oldest_pending_timestamp()
    if oldest is not None:
        return lag, max(now_ms - oldest, 0) / 1000
    if lag == 0:
        return 0, 0.0
    # Behind, nothing in flight: the next record is no older than the last one handled.
    return lag, max(now_ms - tracker.last_timestamp, 0) / 1000
