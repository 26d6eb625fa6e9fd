"""An in-memory broker for your handlers' unit tests: no Kafka, the real pipeline.

Records go through streamkit's own routing, decoding, validation, handler calls, retry
planning and dead-lettering; only the broker is replaced by lists. Retry delays are not
waited for: a retried record is handled again as soon as the current work is done.

    async def test_invoice_is_requested() -> None:
        async with TestBroker(router) as broker:
            await broker.publish("order.created", {"order_id": "o1", "amount_cents": 5})
            assert broker.published("invoice.requested") == [{"order_id": "o1", ...}]
            assert broker.dead_letters == []
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from confluent_kafka import TopicPartition

from streamkit import envelope as env
from streamkit.codecs.base import event_record
from streamkit.consumer.pipeline import build_pipeline
from streamkit.delivery import Delivery, DeliveryResult
from streamkit.envelope import new_event_id
from streamkit.errors import ConfigError
from streamkit.handlers.registry import Router
from streamkit.observability.metrics import Metrics
from streamkit.observability.stats import BatchStats
from streamkit.retry.topics import tier_map

__all__ = ["Record", "TestBroker"]


@dataclass(frozen=True, slots=True)
class Record:
    """A record in an in-memory topic (the same accessors as a confluent-kafka Message)."""

    _topic: str
    _offset: int
    _key: bytes | None
    _value: bytes | None
    _headers: env.Headers = field(default_factory=list)
    _timestamp: int = field(default_factory=lambda: int(time.time() * 1000))

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> env.Headers:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, self._timestamp)

    def error(self) -> None:
        return None

    def header(self, name: str) -> str | None:
        """A header as text (streamkit's failure headers, for assertions)."""
        return env.header_str(self._headers, name)


class _MemoryTopics:
    """The in-memory broker as a :class:`~streamkit.record.Publisher` and committer."""

    def __init__(self, broker: TestBroker) -> None:
        self._broker = broker
        self.committed: dict[tuple[str, int], int] = {}

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: str | bytes | None = None,
        headers: env.Headers | None = None,
        partition: int | None = None,
    ) -> Delivery:
        record = self._broker.append(topic, value, key=key, headers=headers)
        return Delivery.completed(DeliveryResult(topic, 0, record.offset(), 0.0))

    def topic_for(self, event_type: str) -> str:
        topic = self._broker.router.publish_topics.get(event_type)
        if topic is None:
            raise ConfigError(
                f"no topic for event type {event_type!r}: pass topic=, or map it in "
                "Router(publish_topics=...)"
            )
        return topic

    def close(self, timeout: float = 10.0) -> int:
        return 0

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset


class TestBroker:
    """Runs a router's handlers against in-memory topics.

    It runs the pipeline :class:`~streamkit.Worker` runs (:func:`build_pipeline`), with
    lists for topics: routing, codec, middleware, retry planning and commits are the real
    ones. ``committed`` shows the offsets the commit owner committed.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, router: Router, *, group: str = "test", topic: str | None = None) -> None:
        self.router = router
        self.group = group
        self.source = topic or (router.topics[0] if router.topics else "events")
        self.topics: dict[str, list[Record]] = defaultdict(list)
        self._tiers = tier_map([self.source], group, router.retry_tiers, router.topic_names)
        self._read: dict[str, int] = defaultdict(int)
        self._memory = _MemoryTopics(self)

    async def __aenter__(self) -> TestBroker:
        self._threads = ThreadPoolExecutor(2)
        self._pipeline = build_pipeline(
            self.router,
            self._memory,
            group=self.group,
            tiers=self._tiers,
            stats=BatchStats(Metrics(), self.group),
            threads=self._threads,
            max_inflight=1000,
        )
        self._pipeline.commits.attach(self._memory, asyncio.get_running_loop())
        self._pipeline.commits.assign((topic, 0) for topic in self._tiers)
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._threads.shutdown(wait=False)

    @property
    def committed(self) -> dict[str, int]:
        """The committed position of each topic the service reads (its partition 0)."""
        return {topic: offset for (topic, _), offset in self._memory.committed.items()}

    def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: str | bytes | None = None,
        headers: env.Headers | None = None,
    ) -> Record:
        """Add a raw record to ``topic`` (it is consumed if it is a source or retry topic)."""
        raw_key = key.encode() if isinstance(key, str) else key
        record = Record(topic, len(self.topics[topic]), raw_key, value, list(headers or []))
        self.topics[topic].append(record)
        return record

    async def publish(self, event_type: str, data: Any, *, key: str | bytes | None = None) -> None:
        """Publish an event to the source topic (with the router's codec) and handle
        everything it causes."""
        record = event_record(
            self.router.codec, self.source, event_type, data, key=key, event_id=new_event_id()
        )
        self.append(self.source, record.value, key=record.key, headers=record.headers)
        await self.run()

    async def send_raw(
        self, value: bytes | None, *, key: bytes | None = None, headers: env.Headers | None = None
    ) -> None:
        """Send raw bytes to the source topic (bad input tests) and handle them."""
        self.append(self.source, value, key=key, headers=headers)
        await self.run()

    async def run(self) -> None:
        """Handle every unread record of the source and retry topics until none is left."""
        while True:
            pending = [t for t in self._tiers if self._read[t] < len(self.topics[t])]
            if not pending:
                return
            for topic in pending:
                await self._consume(topic)
            self._pipeline.stats.flush()
            self._pipeline.commits.commit_due()

    async def _consume(self, topic: str) -> None:
        state = self._pipeline.commits.states[(topic, 0)]
        while self._read[topic] < len(self.topics[topic]):
            record = self.topics[topic][self._read[topic]]
            self._read[topic] += 1
            self._pipeline.dispatcher.handle(record, state)
            while state.busy:  # let async handlers and acknowledgements finish
                await asyncio.sleep(0)

    def published(self, event_type: str) -> list[Any]:
        """The ``data`` of every envelope of ``event_type`` published by handlers."""
        derived = set(self._tiers) | {self.router.topic_names.dlq(self.source, self.group)}
        out = []
        for topic, records in self.topics.items():
            if topic in derived:
                continue
            for record in records:
                value = record.value()
                if record.header(env.HEADER_EVENT_TYPE) == event_type and value:
                    out.append(self._data(value))
        return out

    def _data(self, value: bytes) -> Any:
        described = self.router.codec.describe(value)
        if isinstance(described, dict) and "data" in described and "event_id" in described:
            return described["data"]  # an envelope: its payload
        return described

    @property
    def dead_letters(self) -> list[Record]:
        """Records in the dead-letter topic, with their failure headers."""
        return list(self.topics[self.router.topic_names.dlq(self.source, self.group)])
