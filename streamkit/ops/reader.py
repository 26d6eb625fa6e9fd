"""Bounded reads: from a start offset to an end offset captured up front, then stop.

Reads use ``assign()`` (no group membership, no rebalances) and end at the high
watermarks taken when the command started, so they terminate even while producers
keep appending to the topic.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import OpsError

POLL = 0.2  # seconds per consume call; short, so a stop request is noticed quickly
FATAL_CODES = frozenset(
    {
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        # Not GROUP_AUTHORIZATION_FAILED: assign() reads need no group, yet librdkafka
        # looks up the coordinator of even a throwaway group, and a principal with no
        # ACL on it (dlq list as an operator) is refused. Replay's own group, which does
        # commit, is checked by the preflight, and a refused commit fails the replay.
    }
)


@dataclass(frozen=True, slots=True)
class Span:
    """The offsets ``[start, end)`` of one partition to read."""

    partition: int
    start: int
    end: int

    @property
    def size(self) -> int:
        """How many offsets the span covers (records, unless some were deleted)."""
        return max(self.end - self.start, 0)


def full_spans(cluster: Cluster, topic: str, partitions: list[int]) -> list[Span]:
    """Every partition from its low to its high watermark, as they are now."""
    marks = cluster.watermarks(topic, partitions)
    return [Span(p, low, high) for p, (low, high) in marks.items()]


def scan(
    consumer: Any, topic: str, spans: list[Span], *, batch_size: int, idle_timeout: float
) -> Iterator[list[Any]]:
    """Yield batches of the records of ``spans``, in offset order per partition.

    Raises :class:`OpsError` when nothing arrives for ``idle_timeout`` seconds while
    records are still due (broker gone), rather than hang.
    """
    todo = {s.partition: s.end for s in spans if s.size}
    if not todo:
        return
    # Known leaders up front: otherwise librdkafka waits for its 1 s topic scan to fetch.
    try:
        consumer.list_topics(topic, timeout=idle_timeout)
    except KafkaException as exc:
        raise OpsError(f"reading {topic} failed: {exc.args[0].str()}") from None
    consumer.assign([TopicPartition(topic, s.partition, s.start) for s in spans if s.size])
    idle_since = time.monotonic()
    while todo:
        msgs = _fetch(consumer, batch_size)
        batch = _keep(consumer, topic, msgs, todo)
        if msgs:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > idle_timeout:
            raise OpsError(f"no records from {topic} within {idle_timeout:g}s; is the broker up?")
        if batch:
            yield batch


def _fetch(consumer: Any, batch_size: int) -> list[Any]:
    """What is already fetched (up to ``batch_size``), else wait up to POLL for the first."""
    msgs: list[Any] = consumer.consume(batch_size, 0)
    if msgs:
        return msgs
    first = consumer.poll(POLL)
    if first is None:
        return []
    return [first, *consumer.consume(batch_size - 1, 0)] if batch_size > 1 else [first]


def _keep(consumer: Any, topic: str, msgs: list[Any], todo: dict[int, int]) -> list[Any]:
    """The records of ``msgs`` within their span; updates ``todo`` as partitions finish."""
    kept = []
    for msg in msgs:
        err = msg.error()
        if err is not None:
            _on_error(consumer, topic, msg, err, todo)
            continue
        partition, offset = msg.partition(), msg.offset()
        end = todo.get(partition)
        if end is None or offset >= end:
            _finish(consumer, topic, partition, todo)
            continue
        kept.append(msg)
        if offset >= end - 1:
            _finish(consumer, topic, partition, todo)
    return kept


def _on_error(consumer: Any, topic: str, msg: Any, err: KafkaError, todo: dict[int, int]) -> None:
    if err.code() == KafkaError._PARTITION_EOF:
        # The end of what is stored: the span's last offsets were deleted or are markers.
        _finish(consumer, topic, msg.partition(), todo)
    elif err.fatal() or err.code() in FATAL_CODES:
        raise OpsError(f"reading {topic} failed: {err.str()}")
    # Anything else (a broker connection dropping) is retried by the client itself.


def _finish(consumer: Any, topic: str, partition: int, todo: dict[int, int]) -> None:
    if todo.pop(partition, None) is not None:
        consumer.pause([TopicPartition(topic, partition)])  # stop fetching past the end
