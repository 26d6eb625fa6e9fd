"""Replay dead letters: re-publish them so the group that failed them handles them again.

Default target: the owning group's first retry tier, derived from the record's
``streamkit-original-topic`` and ``streamkit-group`` headers -- never the shared source
topic, so other groups on that topic see nothing twice. Failure headers are stripped (the
attempt count starts again), ``original-*`` and the user's headers are kept, and
``streamkit-replayed-from`` / ``-at`` say where and when. Key and value go byte for byte,
to the retry tier partition numbered like the source partition, as the runtime does.

Progress lives in the replay's own consumer group, committed per batch and only after
every record of the batch was acknowledged by the broker: a stopped replay resumes from
its last commit, so at most the records of one unfinished batch are sent twice.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from streamkit import envelope as env
from streamkit.errors import ProducerError
from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import OpsError, UnknownTopicsError, UnreplayableRecordError
from streamkit.ops.filters import RecordFilter
from streamkit.ops.reader import Span, scan
from streamkit.ops.records import DeadLetter
from streamkit.producer import Delivery, Producer
from streamkit.retry.topics import TopicNames

DROP_HEADERS = frozenset(env.FAILURE_HEADERS) | {env.H_REPLAYED_FROM, env.H_REPLAYED_AT}
GROUP_PREFIX = "streamkit-replay."
BATCH = 5000  # records per produce-then-commit round
ACK_TIMEOUT = 60.0  # seconds; longer than the producer's message.timeout.ms (30 s)
SAMPLE = 10


def replay_headers(headers: env.Headers, position: str, at_ms: int) -> env.Headers:
    """The record's headers minus failure (and earlier replay) headers, plus this replay's."""
    kept = [(k, v) for k, v in headers if k not in DROP_HEADERS]
    kept.append((env.H_REPLAYED_FROM, position.encode()))
    kept.append((env.H_REPLAYED_AT, str(at_ms).encode()))
    return kept


def _origin(headers: env.Headers) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(original topic, group, original partition) header values in one pass (last wins)."""
    source = group = partition = None
    for key, value in headers:
        if key == env.H_ORIGINAL_TOPIC:
            source = value
        elif key == env.H_GROUP:
            group = value
        elif key == env.H_ORIGINAL_PARTITION:
            partition = value
    return source, group, partition


def _partition(raw: bytes | None, count: int) -> int | None:
    """The original partition if the target has it, else None (the key decides)."""
    try:
        partition = int(raw) if raw is not None else -1
    except ValueError:
        return None
    return partition if 0 <= partition < count else None


def default_target(record: DeadLetter, names: TopicNames) -> str:
    """The first retry tier of the group that dead-lettered ``record``."""
    source = record.header(env.H_ORIGINAL_TOPIC)
    group = record.header(env.H_GROUP)
    if not source or not group:
        missing = [h for h, v in ((env.H_ORIGINAL_TOPIC, source), (env.H_GROUP, group)) if not v]
        raise UnreplayableRecordError(
            f"record {record.position} has no {' or '.join(missing)} header, so the retry "
            "tier of its group is unknown (not a streamkit dead letter?); "
            "pass --to TOPIC to choose a target"
        )
    return names.retry(source, group, 1)


def default_group(dlq_topic: str, flt: RecordFilter) -> str:
    """The replay group: one per DLQ, and one per distinct filter.

    Records a filter skips are committed past; keying the group by the filter keeps a
    later replay with another filter from missing them.
    """
    if not flt.label:
        return GROUP_PREFIX + dlq_topic
    digest = hashlib.sha256(flt.label.encode()).hexdigest()[:10]
    return f"{GROUP_PREFIX}{dlq_topic}.{digest}"


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    """What to replay, where to, and how fast."""

    dlq_topic: str
    flt: RecordFilter = field(default_factory=RecordFilter)
    to: str | None = None  # None: each record's retry tier 1
    partitions: tuple[int, ...] = ()
    limit: int | None = None
    rate: float | None = None  # records per second
    group: str | None = None
    names: TopicNames = field(default_factory=TopicNames)
    dry_run: bool = False
    batch_size: int = BATCH

    @property
    def replay_group(self) -> str:
        """The consumer group that holds this replay's progress."""
        return self.group or default_group(self.dlq_topic, self.flt)


@dataclass(slots=True)
class ReplayReport:
    """What a replay did (or, on a dry run, would do)."""

    group: str
    dry_run: bool
    total: int = 0  # offsets left to read when the replay started
    scanned: int = 0
    replayed: int = 0
    skipped: int = 0
    failed: int = 0
    interrupted: bool = False
    limited: bool = False
    error: str | None = None
    seconds: float = 0.0
    targets: Counter[str] = field(default_factory=Counter)
    sample: list[tuple[DeadLetter, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the sample)."""
        return {
            "group": self.group,
            "dry_run": self.dry_run,
            "replayed": self.replayed,
            "skipped": self.skipped,
            "failed": self.failed,
            "scanned": self.scanned,
            "interrupted": self.interrupted,
            "limited": self.limited,
            "error": self.error,
            "seconds": round(self.seconds, 3),
            "rate": round(self.replayed / self.seconds, 1) if self.seconds else None,
            "targets": dict(self.targets),
        }


@dataclass(slots=True)
class _Item:
    """One record of a batch: its position and how its publish went."""

    partition: int
    offset: int
    delivery: Delivery | None = None  # None: skipped by the filter, or failed at once
    failed: bool = False


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

    def run(self) -> ReplayReport:
        """Replay from the group's last commit up to the end offsets of this moment."""
        opts, topic = self.options, self.options.dlq_topic
        parts = self.cluster.partitions(topic, opts.partitions)
        if opts.to:
            self.cluster.require(opts.to)
        self._started = time.monotonic()
        consumer = self.cluster.consumer(self.report.group)
        if not opts.dry_run:
            self._producer = Producer(self.cluster.producer_settings())
        try:
            spans = self._spans(consumer, parts)
            self.report.total = sum(s.size for s in spans)
            self.progress(self.report)
            size, idle = self._batch_size(), self.cluster.timeout
            self._loop(consumer, scan(consumer, topic, spans, batch_size=size, idle_timeout=idle))
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
        starts = {tp.partition: tp.offset for tp in done}
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
        at_ms = int(time.time() * 1000)
        go_on, error = True, None
        for msg in batch:
            if self._should_end():
                go_on = False
                break
            try:
                item = self._one(DeadLetter.from_message(msg), at_ms)
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

    def _one(self, record: DeadLetter, at_ms: int) -> _Item | None:
        item = _Item(record.partition, record.offset)
        if not self.options.flt.matches(record):
            self.report.skipped += 1
            return item
        target, partition = self._route(record)
        if not self._pace():
            self.report.interrupted = True
            return None
        self.report.replayed += 1
        self.report.targets[target] += 1
        if self._producer is None:
            if len(self.report.sample) < SAMPLE:
                self.report.sample.append((record, target))
            return item
        headers = replay_headers(record.headers, record.position, at_ms)
        try:
            item.delivery = self._producer.send(
                target, record.value, key=record.key, headers=headers, partition=partition
            )
        except ProducerError as exc:  # rejected locally (too large, queue stuck)
            self._failed(item, exc)
        return item

    def _route(self, record: DeadLetter) -> tuple[str, int | None]:
        """Target topic and partition: ``--to`` as the key decides, or the retry tier
        partition numbered like the source partition, as the runtime routes failures."""
        if self.options.to:
            return self.options.to, None  # checked before the replay started
        source, group, partition = _origin(record.headers)
        target = self._targets.get((source, group))
        if target is None:
            target = default_target(record, self.options.names)
            self._check(target, record)
            self._targets[(source, group)] = target
        return target, _partition(partition, self._counts[target])

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
        self._producer.flush(ACK_TIMEOUT)
        positions: dict[int, int] = {}
        for item in items:
            if not self._acked(item):
                self._blocked.add(item.partition)
            elif item.partition not in self._blocked:
                positions[item.partition] = item.offset + 1
        self._commit(consumer, positions)

    def _acked(self, item: _Item) -> bool:
        if item.failed:
            return False
        if item.delivery is None:
            return True
        try:
            item.delivery.result(ACK_TIMEOUT)
        except (ProducerError, concurrent.futures.TimeoutError) as exc:
            self._failed(item, exc)
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
