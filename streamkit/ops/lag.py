"""Consumer-group lag per partition: committed offset, end offset, and the difference.

A library function so the runtime, the CLI and scripts share one definition of lag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streamkit.ops.cluster import EARLIEST, LATEST, offsets
from streamkit.ops.errors import OpsError, UnknownTopicsError
from streamkit.positions import messages_behind


@dataclass(frozen=True, slots=True)
class LagRow:
    """One partition's lag. ``committed`` is None when the group never committed there;
    the lag then counts every stored record (streamkit starts new groups at the earliest)."""

    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "end": self.end,
            "lag": self.lag,
        }


def committed_offsets(admin: AdminClient, group: str, timeout: float) -> dict[tuple[str, int], int]:
    """Every offset ``group`` committed: ``{(topic, partition): offset}``."""
    request = [ConsumerGroupTopicPartitions(group)]
    try:
        result = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group]
        found = result.result(timeout).topic_partitions or []
    except KafkaException as exc:
        raise OpsError(
            f"reading the offsets of group {group} failed: {exc.args[0].str()}"
        ) from None
    return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}


def _partitions(admin: AdminClient, topics: Sequence[str], timeout: float) -> list[tuple[str, int]]:
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise OpsError(f"reading the cluster metadata failed: {exc.args[0].str()}") from None
    missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error]
    if missing:
        raise UnknownTopicsError(missing)
    return [(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)]


def group_lag(
    admin: AdminClient, group: str, topics: Sequence[str] = (), timeout: float = 10.0
) -> list[LagRow]:
    """Lag of ``group`` on ``topics`` (all partitions), or on every partition it committed.

    Raises :class:`OpsError` when no topic is given and the group has committed nothing.
    """
    done = committed_offsets(admin, group, timeout)
    parts = _partitions(admin, topics, timeout) if topics else sorted(done)
    if not parts:
        raise OpsError(f"group {group} has no committed offsets (pass --topic to see its lag)")
    ends = offsets(admin, {TopicPartition(t, p): LATEST for t, p in parts}, timeout)
    fresh = [tp for tp in parts if tp not in done]
    lows = offsets(admin, {TopicPartition(t, p): EARLIEST for t, p in fresh}, timeout)
    rows = []
    for tp in parts:
        end = ends[tp]
        behind = messages_behind(end, done.get(tp), lows.get(tp, end))
        rows.append(LagRow(tp[0], tp[1], done.get(tp), end, behind))
    return rows


def total_lag(rows: Sequence[LagRow]) -> int:
    """The sum of every row's lag."""
    return sum(row.lag for row in rows)
