"""The foundation: the test broker is a real Kafka that does what streamkit relies on."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

pytestmark = pytest.mark.kafka


def test_idempotent_produce_group_consume_manual_commit_read_back(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("foundation", partitions=3)
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"}
    )
    for i in range(30):
        producer.produce(topic, b"v%d" % i, key=b"k%d" % (i % 3))
    assert producer.flush(30) == 0

    group = f"g-{unique}"
    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "partition.assignment.strategy": "cooperative-sticky",
        }
    )
    consumer.subscribe([topic])
    seen: list[Any] = []
    for _ in range(100):  # bounded: 100 polls of at most 0.5 s
        seen += [m for m in consumer.consume(100, 0.5) if m.error() is None]
        if len(seen) == 30:
            break
    assert len(seen) == 30
    last = {m.partition(): m.offset() + 1 for m in seen}
    offsets = [TopicPartition(topic, p, o) for p, o in last.items()]
    consumer.commit(offsets=offsets, asynchronous=False)
    consumer.close()

    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    committed = reader.committed([TopicPartition(topic, p) for p in range(3)], 15)
    reader.close()
    assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == last
    assert sum(last.values()) == 30


def test_topics_are_not_auto_created(kafka_bootstrap: str, unique: str) -> None:
    # streamkit detects missing retry/DLQ topics; a broker that invents them would hide it.
    producer = Producer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "topic.metadata.propagation.max.ms": 500,
            "message.timeout.ms": 5000,
        }
    )
    errors: list[Any] = []
    producer.produce(f"missing-{unique}", b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(10)
    assert errors
    assert errors[0] is not None
