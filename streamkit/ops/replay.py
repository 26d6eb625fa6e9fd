"""Replay dead letters: re-publish them so the group that failed them handles them again.

Default target: the owning group's first retry tier, derived from the record's
``streamkit-original-topic`` and ``streamkit-group`` headers -- never the shared source
topic, so other groups on that topic see nothing twice. Failure headers are stripped (the
attempt count starts again), ``original-*`` and the user's headers are kept, and
``streamkit-replayed-from`` / ``-at`` say where and when. Key and value go byte for byte,
to the retry tier partition numbered like the source partition, as the runtime does.

Progress lives in the replay's own consumer group, committed per batch and only after
every record of the batch was acknowledged by the broker: a stopped replay resumes from
its last commit, so at most the records of one unfinished batch are sent twice. Each
replayed record is also written to the DLQ's ledger (:mod:`streamkit.ops.ledger`) before
that commit: a later replay, with any filter, skips it unless ``again``.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from streamkit import envelope as env
from streamkit.consumer.dispatch import BROKEN, read_headers
from streamkit.consumer.gcpolicy import worker_gc
from streamkit.errors import ProducerError
from streamkit.ops import ledger
from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import OpsError, UnknownTopicsError
from streamkit.ops.reader import Span, scan
from streamkit.ops.records import DeadLetter
from streamkit.ops.replay_plan import (
    BATCH,
    Origin,
    ReplayOptions,
    ReplayReport,
    default_group,
    default_target,
    replay_headers,
    rewrite_headers,
    target_partition,
)
from streamkit.producer import Delivery, Producer

ACK_TIMEOUT = 60.0  # seconds; longer than the producer's message.timeout.ms (30 s)
SAMPLE = 10

__all__ = [
    "Replayer", "ReplayOptions", "ReplayReport", "default_group", "default_target",
    "replay_headers",
]  # fmt: skip


@dataclass(slots=True)
class _Item:
    """One record of a batch: its position and how its publish went."""

    partition: int
    offset: int
    delivery: Delivery | None = None  # None: skipped by the filter, or failed at once
    failed: bool = False
    target: str = ""


class Replayer:
    """Runs one replay. ``stop`` (set it from a signal handler) ends it after the
    current record, with everything sent so far acknowledged and committed.

    Per batch (thousands of records): send them all, flush once, wait for every ack,
    commit. librdkafka prefetches the next batch meanwhile.
    """

    def __init__(
        self,
        cluster: Cluster,
        options: ReplayOptions,
        *,
        stop: threading.Event | None = None,
        progress: Callable[[ReplayReport], None] | None = None,
    ) -> None:
        self.cluster = cluster
        self.options = options
        self.stop = stop or threading.Event()
        self.progress = progress or (lambda _report: None)
        self.report = ReplayReport(options.replay_group, options.dry_run)
        self._producer: Producer | None = None
        self._targets: dict[tuple[bytes | None, bytes | None], str] = {}
        self._counts: dict[str, int] = {}  # partitions per default target
        self._blocked: set[int] = set()  # partitions with a failed record: never committed again
        self._started = 0.0
        self._paced = 0
        self._flushed = False  # the last batch flush left nothing in flight
        self._replayed: dict[ledger.Position, ledger.Entry] = {}  # the ledger at the start
        self._filtering = options.flt.active
        self._prefix = f"{options.dlq_topic}/"  # of each record's replayed-from position

    def run(self) -> ReplayReport:
        """Replay from the group's last commit up to the end offsets of this moment."""
        opts, topic = self.options, self.options.dlq_topic
        parts = self.cluster.partitions(topic, opts.partitions)
        if opts.to:
            self.cluster.require(opts.to)
        self._started = time.monotonic()
        if not opts.again:
            self._replayed = ledger.read(self.cluster, topic)
        if not opts.dry_run:
            ledger.ensure(self.cluster, topic)
        consumer = self.cluster.consumer(self.report.group)
        if not opts.dry_run:
            # Reports served by the flush of each batch, in this thread: a report thread
            # took the GIL from the sending loop report by report (+13 % without it).
            # Failures only: a record the flush that emptied the queue did not report
            # failed was acknowledged (see _outcome), and no report is served per record.
            settings = {**self.cluster.producer_settings(), "delivery.report.only.error": True}
            self._producer = Producer(settings, report_thread=False)
        try:
            spans = self._spans(consumer, parts)
            self.report.total = sum(s.size for s in spans)
            self.progress(self.report)
            size, idle = self._batch_size(), self.cluster.timeout
            batches = scan(consumer, topic, spans, batch_size=size, idle_timeout=idle)
            # A batch's records and deliveries live until its commit: with CPython's
            # default thresholds collecting them took ~30 % of a replay's time.
            with worker_gc():
                self._loop(consumer, batches)
        finally:
            if self._producer is not None:
                self._producer.close()
            consumer.close()
            self.report.seconds = time.monotonic() - self._started
        return self.report

    def _batch_size(self) -> int:
        rate = self.options.rate
        # Rate-limited: about one batch (and one commit) per second, so a stop loses little.
        return self.options.batch_size if rate is None else max(1, min(int(rate), BATCH))

    def _spans(self, consumer: Any, parts: list[int]) -> list[Span]:
        topic = self.options.dlq_topic
        marks = self.cluster.watermarks(topic, parts)
        wanted = [TopicPartition(topic, p) for p in parts]
        try:
            done = consumer.committed(wanted, self.cluster.timeout)
        except KafkaException as exc:
            raise OpsError(
                f"reading the replay group's offsets failed: {exc.args[0].str()}"
            ) from None
        # --again starts over from the oldest record, whatever this filter did before.
        starts = {} if self.options.again else {tp.partition: tp.offset for tp in done}
        spans = []
        for p in parts:
            low, high = marks[p]
            start = starts.get(p, -1)
            spans.append(Span(p, max(start, low) if start >= 0 else low, high))
        return spans

    def _loop(self, consumer: Any, batches: Iterator[list[Any]]) -> None:
        for batch in batches:
            items, go_on, error = self._send_batch(batch)
            self._settle(consumer, items)
            self.progress(self.report)
            if error is not None:
                raise error
            if not go_on or self.report.failed:
                return

    # -- one batch: send every record, then wait for every ack, then commit --------------

    def _send_batch(self, batch: list[Any]) -> tuple[list[_Item], bool, OpsError | None]:
        """Send what ``batch`` selects: (items handled, go on?, error that ends the replay)."""
        items: list[_Item] = []
        stamp = str(int(time.time() * 1000)).encode()  # replayed-at: one per batch
        go_on, error = True, None
        for msg, headers in zip(batch, read_headers(batch), strict=True):
            if self._should_end():
                go_on = False
                break
            try:
                item = self._one(msg, headers, stamp)
            except OpsError as exc:
                error = exc
                break
            if item is None:  # stopped while pacing
                go_on = False
                break
            items.append(item)
        self.report.scanned += len(items)
        return items, go_on, error

    def _should_end(self) -> bool:
        if self.stop.is_set():
            self.report.interrupted = True
            return True
        limit = self.options.limit
        if limit is not None and self.report.replayed >= limit:
            self.report.limited = True
            return True
        return False

    def _one(self, msg: Any, headers: env.Headers | None, stamp: bytes) -> _Item | None:
        """Replay one consumed dead letter, its headers read once (``read_headers``; the
        :class:`DeadLetter` view is made only where a filter, a dry run or an unknown
        origin needs one)."""
        if headers is BROKEN:  # touching them would crash the interpreter
            raise OpsError(
                f"{self._prefix}{msg.partition()}/{msg.offset()} has a header name that is "
                "not UTF-8 and cannot be replayed; progress up to it is committed"
            )
        headers = headers or []
        item = _Item(msg.partition(), msg.offset())
        if self._filtering and not self.options.flt.matches(DeadLetter.of(msg, headers)):
            self.report.skipped += 1
            return item
        if (item.partition, item.offset) in self._replayed:
            self.report.already += 1
            return item
        position = f"{self._prefix}{item.partition}/{item.offset}".encode()
        kept, origin = rewrite_headers(headers, position, stamp)
        target, partition = self._route(msg, headers, origin)
        item.target = target
        if not self._pace():
            self.report.interrupted = True
            return None
        self.report.replayed += 1
        self.report.targets[target] += 1
        if self._producer is None:
            if len(self.report.sample) < SAMPLE:
                self.report.sample.append((DeadLetter.of(msg, headers), target))
            return item
        try:
            item.delivery = self._producer.send(
                target, msg.value(), key=msg.key(), headers=kept, partition=partition
            )
        except ProducerError as exc:  # rejected locally (too large, queue stuck)
            self._failed(item, exc)
        return item

    def _route(self, msg: Any, headers: env.Headers, origin: Origin) -> tuple[str, int | None]:
        """Target topic and partition: ``--to`` as the key decides, or the retry tier
        partition numbered like the source partition, as the runtime routes failures."""
        if self.options.to:
            return self.options.to, None  # checked before the replay started
        source, group, partition = origin
        target = self._targets.get((source, group))
        if target is None:
            record = DeadLetter.of(msg, headers)
            target = default_target(record, self.options.names)
            self._check(target, record)
            self._targets[(source, group)] = target
        return target, target_partition(partition, self._counts[target])

    def _check(self, target: str, record: DeadLetter) -> None:
        if target in self._counts:
            return
        if not (self.cluster.exists(target) or self.cluster.exists(target, refresh=True)):
            raise UnknownTopicsError(
                [target],
                f"replay target of {record.position}; create the group's retry tiers with "
                "`streamkit topics ensure`, or pass --to TOPIC",
            )
        self._counts[target] = self.cluster.partition_count(target)

    def _pace(self) -> bool:
        """Wait for the next slot under ``--rate``; False if stopped meanwhile."""
        rate = self.options.rate
        if rate is None:
            return True
        due = self._started + self._paced / rate
        self._paced += 1
        delay = due - time.monotonic()
        return delay <= 0 or not self.stop.wait(delay)

    def _settle(self, consumer: Any, items: list[_Item]) -> None:
        """Wait for the acks of ``items``; commit each partition up to its first failure."""
        if self._producer is None or not items:
            return  # dry run: nothing sent, nothing committed
        # Served here, the delivery reports need no hand-off to the producer's thread.
        self._flushed = self._producer.flush(ACK_TIMEOUT) == 0
        positions: dict[int, int] = {}
        sent: list[_Item] = []
        for item in items:
            if not self._acked(item):
                self._blocked.add(item.partition)
                continue
            if item.delivery is not None:
                sent.append(item)
            if item.partition not in self._blocked:
                positions[item.partition] = item.offset + 1
        self._record(sent)
        self._commit(consumer, positions)

    def _record(self, sent: list[_Item]) -> None:
        """Write the ledger for ``sent`` and wait for it, before progress is committed.

        If this fails the batch is not committed: a rerun sends it again (at-least-once).
        """
        if self._producer is None or not sent:
            return
        at_ms = int(time.time() * 1000)
        entries: dict[str, ledger.Entry] = {}  # one per target: the ledger groups by entry
        done = []
        for i in sent:
            entry = entries.get(i.target) or ledger.Entry(at_ms, i.target, self.report.group)
            entries[i.target] = entry
            done.append(((i.partition, i.offset), entry))
        deliveries = ledger.record(self._producer, self.options.dlq_topic, done)
        flushed = self._producer.flush(ACK_TIMEOUT) == 0
        errors = (_outcome(delivery, flushed) for delivery in deliveries)
        exc = next((error for error in errors if error is not None), None)
        if exc is not None:
            raise OpsError(
                f"recording replayed records in {ledger.ledger_topic(self.options.dlq_topic)} "
                f"failed ({type(exc).__name__}: {exc}); they were replayed, progress was not "
                "committed: a rerun sends this batch again"
            ) from None

    def _acked(self, item: _Item) -> bool:
        if item.failed:
            return False
        if item.delivery is None:
            return True
        error = _outcome(item.delivery, self._flushed)
        if error is not None:
            self._failed(item, error)
            return False
        return True

    def _failed(self, item: _Item, exc: BaseException) -> None:
        item.failed = True
        self.report.failed += 1
        self.report.replayed -= 1
        if self.report.error is None:
            self.report.error = f"{type(exc).__name__}: {exc}"

    def _commit(self, consumer: Any, positions: dict[int, int]) -> None:
        if not positions:
            return
        topic = self.options.dlq_topic
        offsets = [TopicPartition(topic, p, o) for p, o in positions.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # Everything up to here was acknowledged: a rerun sends these records again.
            raise OpsError(
                f"committing replay progress ({self.report.group}) failed: {exc.args[0].str()}"
            ) from None


def _outcome(delivery: Delivery, flushed: bool) -> BaseException | None:
    """After the batch's flush: the delivery's error, or None if acknowledged.

    Reports are served by that flush alone (no report thread), and only failures are
    reported: a delivery still unsettled was acknowledged if the flush emptied the queue
    (``flushed``: nothing in flight, every failure served), else the flush ran out of
    time with records in flight and whether this one made it is unknown.
    """
    if delivery.done():
        return delivery.exception()
    if flushed:
        return None
    return concurrent.futures.TimeoutError(f"not acknowledged within {ACK_TIMEOUT:.0f} s")
