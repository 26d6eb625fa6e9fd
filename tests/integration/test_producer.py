"""The idempotent producer against a real broker."""

from __future__ import annotations

import asyncio
import threading
import time
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


def test_a_full_local_queue_is_waited_out_without_blocking_the_caller(
    kafka_bootstrap: str, make_topic: Any
) -> None:
    # Issue 17 item 4: on BufferError the producer used to sleep on the caller's thread
    # (the event loop) for up to 30 s. Now a send returns at once and the record waits
    # in order; every one is delivered.
    topic = make_topic("overflow", partitions=1)
    conf = {"bootstrap.servers": kafka_bootstrap, "queue.buffering.max.messages": 10}
    with Producer(conf) as producer:
        slowest = 0.0
        deliveries = []
        for n in range(2000):
            started = time.perf_counter()
            deliveries.append(producer.send(topic, b"%d" % n, key=b"k"))
            slowest = max(slowest, time.perf_counter() - started)
        offsets = [d.result(30).offset for d in deliveries]
    assert offsets == list(range(2000))  # all delivered, in order
    assert slowest < 0.5  # nothing slept on the caller's thread (was up to 30 s)


def test_without_a_report_thread_the_flush_serves_reports_and_feeds_the_overflow(
    kafka_bootstrap: str, make_topic: Any
) -> None:
    # report_thread=False (replay): nothing but flush() serves reports or moves records
    # from the overflow into librdkafka's full queue; every one is still delivered, in
    # order, settled by the time flush returns, in the flushing thread.
    topic = make_topic("no-thread", partitions=1)
    conf = {"bootstrap.servers": kafka_bootstrap, "queue.buffering.max.messages": 10}
    threads: set[str] = set()
    with Producer(
        conf,
        report_thread=False,
        on_settled=lambda _d: threads.add(threading.current_thread().name),
    ) as producer:
        assert not any(t.name == "streamkit-producer" for t in threading.enumerate())
        deliveries = [producer.send(topic, b"%d" % n, key=b"k") for n in range(500)]
        assert not all(d.done() for d in deliveries)  # nobody served them yet
        assert producer.flush(30) == 0
        assert all(d.done() for d in deliveries)
        offsets = [d.result(0).offset for d in deliveries]
    assert offsets == list(range(500))
    assert threads == {threading.current_thread().name}
