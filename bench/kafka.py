"""Parent-side Kafka helpers: topics, groups, and fast pre-production of envelopes."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from bench.workload import EVENT_TYPE, key_of
from streamkit.admin import ensure_topics
from streamkit.envelope import HEADER_EVENT_TYPE, encode_envelope
from streamkit.retry.topics import TopicNames

HEADERS = [(HEADER_EVENT_TYPE, EVENT_TYPE.encode())]
FAST_PRODUCER = {
    "linger.ms": 50,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 512 * 1024,
    "compression.type": "none",
}


class Admin:
    """Creates and deletes what one bench run needs on the broker."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.client = AdminClient({"bootstrap.servers": bootstrap})
        self.created: list[str] = []

    def create_topic(self, name: str, partitions: int) -> str:
        futures = self.client.create_topics([NewTopic(name, partitions, 1)])
        for future in futures.values():
            future.result(30)
        self.created.append(name)
        self._wait_visible([name])
        return name

    def _wait_visible(self, names: list[str], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            topics = self.client.list_topics(timeout=10).topics
            if all(n in topics and not topics[n].error for n in names):
                return
            time.sleep(0.1)

    def set_group_config(self, group: str, configs: dict[str, str]) -> None:
        """KIP-848 group settings (e.g. ``consumer.heartbeat.interval.ms``), within the
        broker's bounds (``group.consumer.min.heartbeat.interval.ms``, ...)."""
        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
            for k, v in configs.items()
        ]
        resource = ConfigResource(ResourceType.GROUP, group, incremental_configs=entries)
        for future in self.client.incremental_alter_configs([resource]).values():
            future.result(30)

    def ensure_tiers(self, source: str, group: str, tiers: int) -> list[str]:
        """streamkit's retry tiers and DLQ for ``group`` (``streamkit topics ensure``)."""
        wanted = {name: source for name in TopicNames().all_for(source, group, tiers)}
        metadata = self.client.list_topics(timeout=10)
        ensure_topics(self.client, metadata, wanted, replication_factor=1)
        self._wait_visible(list(wanted))
        return list(wanted)

    def forget(self, group: str, topics: list[str]) -> None:
        """Delete a finished run's consumer group and topics (best effort)."""
        with contextlib.suppress(KafkaException, ValueError):
            for future in self.client.delete_consumer_groups([group]).values():
                future.result(10)
        self.delete_topics(topics)

    def delete_topics(self, topics: list[str]) -> None:
        if not topics:
            return
        with contextlib.suppress(KafkaException, ValueError):
            for future in self.client.delete_topics(topics).values():
                future.result(30)


def envelope(seq: int, keys: int, produced_at: float) -> tuple[str, bytes]:
    """Key and value of event ``seq`` (~170 bytes, as ``streamkit`` producers write it)."""
    key = key_of(seq, keys)
    data = {"order_id": key, "seq": seq, "amount_cents": 1000 + seq % 9000, "ts": produced_at}
    return key, encode_envelope(EVENT_TYPE, data, occurred_at=datetime.now(UTC))


def _send(
    producer: Producer, topic: str, key: str, value: bytes, headers: list[Any] = HEADERS
) -> None:
    while True:
        try:
            producer.produce(topic, value, key=key, headers=headers)
            return
        except BufferError:
            producer.poll(0.05)


def produce(
    bootstrap: str, topic: str, events: int, keys: int, headers: list[Any] = HEADERS
) -> float:
    """Produce ``events`` envelopes as fast as possible; returns the seconds it took."""
    producer = Producer({"bootstrap.servers": bootstrap, **FAST_PRODUCER})
    started = time.perf_counter()
    now = time.time()
    for seq in range(events):
        key, value = envelope(seq, keys, now)
        _send(producer, topic, key, value, headers)
        if seq % 10_000 == 0:
            producer.poll(0)
            now = time.time()
    _flush(producer)
    return time.perf_counter() - started


def _flush(producer: Producer) -> None:
    if producer.flush(60) != 0:
        raise RuntimeError("bench producer could not flush within 60 s")


def paced(rate: float, duration: float) -> Iterator[int]:
    """Yield 0, 1, 2, ... at ``rate`` per second for ``duration`` seconds (no drift)."""
    total = int(rate * duration)
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i


def produce_paced(
    bootstrap: str, topic: str, rate: float, duration: float, keys: int, first_seq: int = 0
) -> int:
    """Produce at a steady ``rate`` with producer defaults; ``ts`` is the produce time."""
    producer = Producer({"bootstrap.servers": bootstrap})
    sent = 0
    for i in paced(rate, duration):
        seq = first_seq + i
        key, value = envelope(seq, keys, time.time())
        _send(producer, topic, key, value)
        producer.poll(0)
        sent += 1
    _flush(producer)
    return sent
