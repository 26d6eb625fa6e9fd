"""Read an output topic to its end and count outputs by input number (exactly-once tests)."""

from __future__ import annotations

import time
import uuid
from collections import Counter

import orjson
from confluent_kafka import Consumer, TopicPartition


def outputs(
    bootstrap: str, topic: str, partitions: int, isolation: str = "read_committed"
) -> Counter[int]:
    """Every output ``isolation`` lets a reader see, counted by input number.

    ``read_committed`` sees committed transactions only; ``read_uncommitted`` also sees
    the records of aborted ones (proof that an abort happened).
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": isolation,
            "enable.partition.eof": True,
        }
    )
    tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
    consumer.assign(tps)
    seen: Counter[int] = Counter()
    at_end: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.5):
                if m.error() is not None:
                    at_end.add(m.partition())  # _PARTITION_EOF: up to the stable offset
                    continue
                seen[orjson.loads(m.value())["data"]["n"]] += 1
    finally:
        consumer.close()
    assert len(at_end) == partitions, "output topic not read to its end"
    return seen
