"""Shared pieces of the hand-written confluent-kafka loops."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, TopicPartition


def consumer(spec: dict[str, Any]) -> Consumer:
    """An at-least-once consumer: no auto commit, no auto offset store."""
    c = Consumer(
        {
            "bootstrap.servers": spec["bootstrap"],
            "group.id": spec["group"],
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            **spec.get("kafka", {}),  # librdkafka overrides, for experiments
        }
    )
    c.subscribe([spec["topic"]])
    return c


def commit_batch(c: Consumer, msgs: list[Any]) -> None:
    """Commit one past the last offset of each partition in ``msgs``, asynchronously."""
    positions: dict[tuple[str, int], int] = {}
    for m in msgs:
        positions[(m.topic(), m.partition())] = m.offset() + 1
    offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
    c.commit(offsets=offsets, asynchronous=True)


def close(c: Consumer) -> None:
    """Final synchronous commit of what was stored, then leave the group."""
    c.close()
