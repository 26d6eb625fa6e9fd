"""Dead-letter inspection (list, show, stats) and purge; reads never commit anything."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaException, TopicPartition

from streamkit import envelope as env
from streamkit.ops import ledger
from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import OpsError, RecordNotFoundError
from streamkit.ops.filters import RecordFilter
from streamkit.ops.reader import Span, full_spans, scan
from streamkit.ops.records import DeadLetter
from streamkit.ops.timeparse import now_ms

BATCH = 1000


def records(cluster: Cluster, topic: str, partitions: tuple[int, ...] = ()) -> Iterator[DeadLetter]:
    """Every record of ``topic`` (or ``partitions``) stored now; a throwaway consumer reads."""
    spans = full_spans(cluster, topic, cluster.partitions(topic, partitions))
    consumer = cluster.consumer()
    try:
        for batch in scan(consumer, topic, spans, batch_size=BATCH, idle_timeout=cluster.timeout):
            yield from (DeadLetter.from_message(msg) for msg in batch)
    finally:
        consumer.close()


@dataclass(slots=True)
class Listing:
    """The records ``dlq list`` shows and how many matched in all."""

    records: list[DeadLetter] = field(default_factory=list)
    matched: int = 0
    scanned: int = 0
    replayed: dict[ledger.Position, ledger.Entry] = field(default_factory=dict)

    def replay_of(self, record: DeadLetter) -> ledger.Entry | None:
        """When and where ``record`` was replayed, per the ledger (None: never)."""
        return self.replayed.get((record.partition, record.offset))


def list_records(
    cluster: Cluster,
    topic: str,
    flt: RecordFilter,
    *,
    partitions: tuple[int, ...] = (),
    limit: int | None = None,
) -> Listing:
    """The ``limit`` oldest records that match ``flt``, oldest first.

    Partitions arrive in no set order, so the oldest are chosen across all of them, in
    memory bounded by twice ``limit``.
    """
    listing = Listing(replayed=ledger.read(cluster, topic))
    kept = listing.records
    for record in records(cluster, topic, partitions):
        listing.scanned += 1
        if not flt.matches(record):
            continue
        listing.matched += 1
        kept.append(record)
        if limit is not None and len(kept) >= 2 * limit:
            kept.sort(key=_age)
            del kept[limit:]
    kept.sort(key=_age)
    if limit is not None:
        del kept[limit:]
    return listing


def _age(record: DeadLetter) -> tuple[int, int, int]:
    return (record.timestamp_ms, record.partition, record.offset)


def replay_of(cluster: Cluster, topic: str, partition: int, offset: int) -> ledger.Entry | None:
    """When and where the record at ``partition/offset`` was replayed (None: never)."""
    return ledger.read(cluster, topic).get((partition, offset))


def get_record(cluster: Cluster, topic: str, partition: int, offset: int) -> DeadLetter:
    """The record at ``topic/partition/offset``; :class:`RecordNotFoundError` if none."""
    cluster.partitions(topic, (partition,))
    low, high = cluster.watermarks(topic, [partition])[partition]
    if not low <= offset < high:
        raise RecordNotFoundError(
            f"no record at {topic}/{partition}/{offset} "
            f"(partition {partition} holds offsets {low}..{high - 1})"
            if high > low
            else f"no record at {topic}/{partition}/{offset} (partition {partition} is empty)"
        )
    consumer = cluster.consumer()
    try:
        span = [Span(partition, offset, offset + 1)]
        for batch in scan(consumer, topic, span, batch_size=1, idle_timeout=cluster.timeout):
            for msg in batch:
                if msg.offset() == offset:
                    return DeadLetter.from_message(msg)
    finally:
        consumer.close()
    raise RecordNotFoundError(f"no record at {topic}/{partition}/{offset} (deleted?)")


@dataclass(slots=True)
class Stats:
    """What ``dlq stats`` reports."""

    total: int = 0
    by_event_type: Counter[str] = field(default_factory=Counter)
    by_error_type: Counter[str] = field(default_factory=Counter)
    by_original_topic: Counter[str] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None
    replayed: int = 0

    def add(self, record: DeadLetter, replayed: bool = False) -> None:
        """Count one record (``replayed``: the ledger lists it)."""
        self.total += 1
        self.replayed += replayed
        self.by_event_type[record.event_type() or "(none)"] += 1
        self.by_error_type[record.error_type() or "(none)"] += 1
        self.by_original_topic[record.header(env.H_ORIGINAL_TOPIC) or "(none)"] += 1
        ts = record.timestamp_ms
        self.oldest_ms = ts if self.oldest_ms is None else min(self.oldest_ms, ts)
        self.newest_ms = ts if self.newest_ms is None else max(self.newest_ms, ts)

    def as_dict(self, now: int | None = None) -> dict[str, Any]:
        """JSON-ready; ages in seconds."""
        at = now_ms() if now is None else now
        return {
            "total": self.total,
            "replayed": self.replayed,
            "not_replayed": self.total - self.replayed,
            "by_event_type": dict(self.by_event_type.most_common()),
            "by_error_type": dict(self.by_error_type.most_common()),
            "by_original_topic": dict(self.by_original_topic.most_common()),
            "oldest_ms": self.oldest_ms,
            "newest_ms": self.newest_ms,
            "oldest_age_s": None if self.oldest_ms is None else (at - self.oldest_ms) / 1000,
        }


def stats(
    cluster: Cluster, topic: str, flt: RecordFilter, partitions: tuple[int, ...] = ()
) -> Stats:
    """Counts by event type, error type and source topic, and the oldest record's time."""
    result = Stats()
    done = ledger.read(cluster, topic)
    for record in records(cluster, topic, partitions):
        if flt.matches(record):
            result.add(record, (record.partition, record.offset) in done)
    return result


@dataclass(frozen=True, slots=True)
class PurgeCut:
    """One partition of a purge: offsets ``[low, cut)`` go."""

    partition: int
    low: int
    cut: int

    @property
    def count(self) -> int:
        """Records this cut deletes."""
        return max(self.cut - self.low, 0)


def plan_purge(
    cluster: Cluster, topic: str, before_ms: int | None, partitions: tuple[int, ...] = ()
) -> list[PurgeCut]:
    """Where to cut each partition: before the first record at or after ``before_ms``.

    ``before_ms`` None cuts everything stored now (the high watermarks of this moment,
    so records arriving meanwhile survive).
    """
    parts = cluster.partitions(topic, partitions)
    marks = cluster.watermarks(topic, parts)
    firsts = {} if before_ms is None else cluster.offsets_for_time(topic, parts, before_ms)
    cuts = []
    for p in parts:
        low, high = marks[p]
        first = firsts.get(p, -1)
        cut = high if first < 0 else min(first, high)
        cuts.append(PurgeCut(p, low, max(cut, low)))
    return cuts


def purge(cluster: Cluster, topic: str, cuts: list[PurgeCut]) -> dict[int, int]:
    """Delete the records before each cut (DeleteRecords); returns the new low watermarks."""
    wanted = [TopicPartition(topic, c.partition, c.cut) for c in cuts if c.count]
    if not wanted:
        return {}
    timeout = cluster.timeout
    try:
        futures = cluster.admin.delete_records(
            wanted, request_timeout=timeout, operation_timeout=timeout
        )
        return {tp.partition: f.result(timeout).low_watermark for tp, f in futures.items()}
    except KafkaException as exc:
        raise OpsError(f"deleting records of {topic} failed: {exc.args[0].str()}") from None
