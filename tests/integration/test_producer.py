"""The idempotent producer against a real broker."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from streamkit import Producer, RecordTooLargeError, UnknownTopicError
from streamkit.errors import ConfigError, ProducerClosedError
from tests.integration.helpers import read_all

pytestmark = pytest.mark.kafka


class Invoice(BaseModel):
    order_id: str


def test_idempotence_is_forced_on(kafka_bootstrap: str) -> None:
    with Producer(
        {"bootstrap.servers": kafka_bootstrap, "enable.idempotence": False, "acks": "1"}
    ) as producer:
        assert producer.settings["enable.idempotence"] is True
        assert producer.settings["acks"] == "all"


def test_delivery_futures_resolve_in_order_per_key(kafka_bootstrap: str, make_topic: Any) -> None:
    topic = make_topic("prod", partitions=3)
    with Producer({"bootstrap.servers": kafka_bootstrap}) as producer:
        deliveries = [
            producer.publish("invoice.requested", Invoice(order_id=str(i)), key="k", topic=topic)
            for i in range(100)
        ]
        results = [d.result(30) for d in deliveries]
    assert {r.partition for r in results} == {results[0].partition}
    assert [r.offset for r in results] == list(range(100))
    assert all(r.latency >= 0 for r in results)
    records = read_all(kafka_bootstrap, topic, 100)
    first = orjson.loads(records[0].value())
    assert first["event_type"] == "invoice.requested"
    assert first["data"] == {"order_id": "0"}
    assert ("event_type", b"invoice.requested") in records[0].headers()


def test_publish_is_awaitable(kafka_bootstrap: str, make_topic: Any) -> None:
    topic = make_topic("aw", partitions=1)

    async def main() -> int:
        with Producer({"bootstrap.servers": kafka_bootstrap}) as producer:
            result = await producer.publish("x", {"a": 1}, topic=topic)
            return result.offset

    assert asyncio.run(main()) == 0


def test_typed_errors(kafka_bootstrap: str, make_topic: Any) -> None:
    topic = make_topic("big", partitions=1)
    conf = {"bootstrap.servers": kafka_bootstrap, "topic.metadata.propagation.max.ms": 1000}
    with Producer(conf) as producer:
        with pytest.raises(RecordTooLargeError):
            producer.send(topic, b"x" * 2_000_000)
        missing = producer.send("no-such-topic-streamkit", b"{}")
        with pytest.raises(UnknownTopicError):
            missing.result(30)
        with pytest.raises(ConfigError, match="no topic for event type"):
            producer.publish("unmapped.type", {})
    with pytest.raises(ProducerClosedError):
        producer.send(topic, b"{}")
