"""The two backends the behavioural suite runs on: the in-memory TestBroker and real Kafka.

Each scenario is written once against :class:`Backend`; the Kafka one runs a real
:class:`~streamkit.Worker` in the test's event loop against the broker of the session, so
the in-memory double cannot drift from what the worker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from streamkit import Producer, Router, Settings, Worker
from streamkit import envelope as env
from streamkit.testing import TestBroker
from tests.integration.helpers import NOT_READY

SETTLE_TIMEOUT = 60.0  # seconds: a hang fails the test instead of the suite


@dataclass(frozen=True)
class Seen:
    """A record read back from a topic."""

    key: bytes | None
    value: bytes | None
    headers: env.Headers

    def header(self, name: str) -> str | None:
        return env.header_str(self.headers, name)


class Backend(Protocol):
    source: str
    group: str

    async def send(self, event_type: str, data: Any, *, key: str | None = None) -> None: ...
    async def send_raw(self, value: bytes, headers: env.Headers | None = None) -> None: ...
    async def settle(self) -> None: ...
    async def records(self, topic: str) -> list[Seen]: ...
    async def committed(self) -> int: ...


class MemoryBackend:
    """TestBroker: everything a send causes is handled before it returns."""

    def __init__(self, broker: TestBroker) -> None:
        self._broker = broker
        self.source = broker.source
        self.group = broker.group

    async def send(self, event_type: str, data: Any, *, key: str | None = None) -> None:
        await self._broker.publish(event_type, data, key=key)

    async def send_raw(self, value: bytes, headers: env.Headers | None = None) -> None:
        await self._broker.send_raw(value, headers=headers)

    async def settle(self) -> None:
        await self._broker.run()

    async def records(self, topic: str) -> list[Seen]:
        return [Seen(r.key(), r.value(), r.headers()) for r in self._broker.topics[topic]]

    async def committed(self) -> int:
        return self._broker.committed.get(self.source, -1)


class KafkaBackend:
    """A real Worker on the session's broker; ``settle`` waits for its commits."""

    def __init__(self, bootstrap: str, router: Router, source: str, group: str) -> None:
        self._bootstrap = bootstrap
        self._router = router
        self.source = source
        self.group = group
        self._producer = Producer({"bootstrap.servers": bootstrap})
        self._sent = 0

    async def send(self, event_type: str, data: Any, *, key: str | None = None) -> None:
        await self._producer.publish(event_type, data, key=key, topic=self.source)
        self._sent += 1

    async def send_raw(self, value: bytes, headers: env.Headers | None = None) -> None:
        await self._producer.send(self.source, value, headers=headers)
        self._sent += 1

    async def settle(self) -> None:
        """Every source record and every retry record handled and committed."""
        tiers = [
            t for t in self._router.derived_topics([self.source], self.group) if ".retry." in t
        ]
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while not await asyncio.to_thread(self._all_committed, [self.source, *tiers]):
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled within {SETTLE_TIMEOUT}s")
            await asyncio.sleep(0.1)

    def _all_committed(self, topics: list[str]) -> bool:
        consumer = Consumer({"bootstrap.servers": self._bootstrap, "group.id": self.group})
        try:
            tps = [TopicPartition(t, 0) for t in topics]
            done = {tp.topic: tp.offset for tp in consumer.committed(tps, 10)}
            ends = {t: consumer.get_watermark_offsets(TopicPartition(t, 0), 10)[1] for t in topics}
        except KafkaException as exc:
            # A retry tier created moments ago may not have its leader in every broker's
            # metadata yet (CI saw NOT_LEADER_FOR_PARTITION): not settled, ask again.
            if exc.args[0].code() in NOT_READY:
                return False
            raise
        finally:
            consumer.close()
        return done[self.source] >= self._sent and all(max(done[t], 0) >= ends[t] for t in topics)

    async def records(self, topic: str) -> list[Seen]:
        return await asyncio.to_thread(read_topic, self._bootstrap, topic)

    async def committed(self) -> int:
        consumer = Consumer({"bootstrap.servers": self._bootstrap, "group.id": self.group})
        try:
            [tp] = await asyncio.to_thread(consumer.committed, [TopicPartition(self.source, 0)], 10)
        finally:
            consumer.close()
        return int(tp.offset)

    def close(self) -> None:
        self._producer.close(5)


def read_topic(bootstrap: str, topic: str) -> list[Seen]:
    """Every record of partition 0 of ``topic``, up to its end offset now."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4().hex[:8]}"}
    )
    try:
        _, end = consumer.get_watermark_offsets(TopicPartition(topic, 0), 10)
        consumer.assign([TopicPartition(topic, 0, 0)])
        out: list[Seen] = []
        deadline = time.monotonic() + 30
        while len(out) < end and time.monotonic() < deadline:
            for m in consumer.consume(1000, 0.2):
                if m.error() is None:
                    out.append(Seen(m.key(), m.value(), m.headers() or []))
    finally:
        consumer.close()
    return out


@contextlib.asynccontextmanager
async def memory_backend(router: Router, source: str, group: str) -> AsyncIterator[Backend]:
    async with TestBroker(router, group=group, topic=source) as broker:
        yield MemoryBackend(broker)


@contextlib.asynccontextmanager
async def kafka_backend(
    bootstrap: str, router: Router, source: str, group: str, extra_topics: list[str]
) -> AsyncIterator[Backend]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    names = [source, *router.derived_topics([source], group), *extra_topics]
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in names]).values():
        future.result(30)
    settings = Settings(
        bootstrap_servers=bootstrap,
        group_id=group,
        topics=[source],
        commit_interval=0.1,
        shutdown_timeout=5,
        kafka={"session.timeout.ms": "6000"},
    )
    worker = Worker(router, settings)
    running = asyncio.ensure_future(worker.run())
    backend = KafkaBackend(bootstrap, router, source, group)
    try:
        yield backend
    finally:
        worker.stop()
        await asyncio.wait_for(running, 30)
        backend.close()
        for future in admin.delete_topics(names, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(30)
