"""An in-memory broker for your handlers' unit tests: no Kafka, the real pipeline.

Records go through the pipeline :class:`~streamkit.Worker` runs (``build_pipeline``):
routing, codec, validation, middleware, handler calls, retry planning, dead-lettering and
commits; only the broker is replaced by lists. With ``delays="skip"`` (default) a retried
record is handled again as soon as the current work is done; with ``delays="virtual"``
it waits until :meth:`TestBroker.advance` moves the clock past its due time.

    async def test_invoice_is_requested() -> None:
        async with TestBroker(router) as broker:
            await broker.publish("order.created", {"order_id": "o1", "amount_cents": 5})
            assert broker.published("invoice.requested") == [{"order_id": "o1"}]
            assert broker.dead_letters == []

The pytest plugin (``streamkit_broker`` fixture) wraps this for sync and async tests.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

from confluent_kafka import TopicPartition

from streamkit import envelope as env
from streamkit.codecs.base import event_record
from streamkit.consumer.pipeline import Pipeline, build_pipeline
from streamkit.delivery import Delivery, DeliveryResult
from streamkit.errors import ConfigError, DeliveryFailedError
from streamkit.handlers.chain import close_all
from streamkit.handlers.context import Context
from streamkit.handlers.middleware import CallNext, CallNextSync, Middleware
from streamkit.handlers.registry import Router, default_router
from streamkit.loader import load_router
from streamkit.observability.metrics import Metrics
from streamkit.observability.stats import BatchStats
from streamkit.retry.topics import tier_map

__all__ = ["Call", "Record", "TestBroker"]


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


@dataclass(frozen=True, slots=True)
class Call:
    """One handler call, as :meth:`TestBroker.calls` records it."""

    event_type: str
    data: Any  # the record's payload as the codec describes it (the envelope's data)
    key: bytes | None
    attempt: int
    topic: str
    offset: int
    at: float  # the broker's clock (epoch seconds, virtual time included)
    error: BaseException | None


class _Recorder(Middleware):
    """Records each handler call for :meth:`TestBroker.calls` (a middleware scope)."""

    def __init__(self, broker: TestBroker) -> None:
        self._broker = broker

    async def handle(self, ctx: Context, call_next: CallNext) -> None:
        error: BaseException | None = None
        try:
            await call_next()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._broker._record_call(ctx, error)

    def handle_sync(self, ctx: Context, call_next: CallNextSync) -> None:
        # A sync form too: sync handlers then run on the spot, as in a worker without
        # middleware, not as a task each.
        error: BaseException | None = None
        try:
            call_next()
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._broker._record_call(ctx, error)


class _MemoryTopics:
    """The in-memory broker as a :class:`~streamkit.record.Publisher` and committer."""

    def __init__(self, broker: TestBroker) -> None:
        self._broker = broker
        self.committed: dict[tuple[str, int], int] = {}
        self.faults: list[list[Any]] = []  # [topic or None, times left, error]

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: str | bytes | None = None,
        headers: env.Headers | None = None,
        partition: int | None = None,
    ) -> Delivery:
        for fault in self.faults:
            if fault[1] > 0 and fault[0] in (None, topic):
                fault[1] -= 1
                return Delivery.failed(fault[2])
        record = self._broker.append(topic, value, key=key, headers=headers)
        return Delivery.completed(DeliveryResult(topic, 0, record.offset(), 0.0))

    def topic_for(self, event_type: str) -> str:
        topic = self._broker.router.publish_topics.get(event_type)
        if topic is None:
            raise ConfigError(
                f"no topic for event type {event_type!r}: pass topic=, or map it in "
                "Router(publish_topics=...) / streamkit.configure(publish_topics=...)"
            )
        return topic

    def close(self, timeout: float = 10.0) -> int:
        return 0

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset


class TestBroker:
    """Runs a router's handlers against in-memory topics.

    ``router``: a :class:`Router`, a module path (``"myservice.handlers"``, as
    ``streamkit run`` takes it), or None for the module-level ``@handler`` functions.
    ``topic`` limits the sources to one (default: the router's topics, else ``events``).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        router: Router | str | None = None,
        *,
        group: str = "test",
        topic: str | None = None,
        delays: Literal["skip", "virtual"] = "skip",
    ) -> None:
        if isinstance(router, str):
            router = load_router(router)
        self.router = router if router is not None else default_router
        self.group = group
        self.sources = [topic] if topic else list(self.router.topics) or ["events"]
        self.source = self.sources[0]
        self.delays = delays
        self.topics: dict[str, list[Record]] = defaultdict(list)
        self._tiers = tier_map(
            self.sources, group, self.router.retry_tiers, self.router.topic_names
        )
        self._read: dict[str, int] = defaultdict(int)
        self._memory = _MemoryTopics(self)
        self._calls: list[Call] = []
        self._advanced = 0.0  # seconds the virtual clock is ahead of the real one

    async def __aenter__(self) -> TestBroker:
        self._threads = ThreadPoolExecutor(2)
        self.metrics = Metrics()
        for mw in self.router.middleware:
            mw.bind(self.metrics, self.group)
        self._pipeline: Pipeline = build_pipeline(
            self.router,
            self._memory,
            group=self.group,
            tiers=self._tiers,
            stats=BatchStats(self.metrics, self.group),
            threads=self._threads,
            max_inflight=1000,
            extra_middleware=[_Recorder(self)],
        )
        self._pipeline.commits.attach(self._memory, asyncio.get_running_loop())
        self._pipeline.commits.assign((topic, 0) for topic in self._tiers)
        if self.delays == "virtual":
            self._pipeline.dispatcher.gate = self._not_due
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await close_all(self.router.middleware)
        self._threads.shutdown(wait=False)

    # -- sending -----------------------------------------------------------------------

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

    async def publish(
        self,
        event_type: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        topic: str | None = None,
    ) -> None:
        """Publish an event to a source topic (the router's codec) and handle what it causes."""
        record = event_record(
            self.router.codec,
            topic or self.source,
            event_type,
            data,
            key=key,
            event_id=env.new_event_id(),
        )
        self.append(record.topic, record.value, key=record.key, headers=record.headers)
        await self.run()

    async def send_raw(
        self,
        value: bytes | None,
        *,
        key: bytes | None = None,
        headers: env.Headers | None = None,
        topic: str | None = None,
    ) -> None:
        """Send raw bytes to a source topic (bad input, foreign records) and handle them."""
        self.append(topic or self.source, value, key=key, headers=headers)
        await self.run()

    def fail_publishes(
        self, times: int = 1, *, topic: str | None = None, error: BaseException | None = None
    ) -> None:
        """Make the next ``times`` sends (to ``topic``, or any) fail with ``error``."""
        failure = error or DeliveryFailedError("injected by TestBroker.fail_publishes")
        self._memory.faults.append([topic, times, failure])

    # -- running -----------------------------------------------------------------------

    async def run(self) -> None:
        """Handle every unread record of the source and retry topics that is due."""
        progress = True
        while progress:
            progress = False
            for topic in self._tiers:
                progress |= await self._consume(topic)
            self._pipeline.stats.flush()
            self._pipeline.commits.commit_due()

    async def run_until_idle(self) -> None:
        """Alias of :meth:`run`: everything due is handled when it returns."""
        await self.run()

    async def advance(self, seconds: float) -> None:
        """Move the virtual clock forward (``delays="virtual"``) and handle what is due."""
        self._advanced += seconds
        await self.run()

    def now(self) -> float:
        """The broker's clock: epoch seconds, plus what :meth:`advance` added."""
        return time.time() + self._advanced

    async def _consume(self, topic: str) -> bool:
        state = self._pipeline.commits.states[(topic, 0)]
        took = False
        while self._read[topic] < len(self.topics[topic]):
            record = self.topics[topic][self._read[topic]]
            if not self._pipeline.dispatcher.take(record, state):
                break  # a retry record not due yet: the tier waits, as on Kafka
            self._read[topic] += 1
            took = True
            while state.busy:  # let async handlers and acknowledgements finish
                await asyncio.sleep(0)
        return took

    def _not_due(self, msg: Any, headers: env.Headers | None, state: Any) -> bool:
        not_before = env.header_int(headers, env.H_NOT_BEFORE)
        return not_before is not None and not_before > self.now() * 1000

    # -- what happened -----------------------------------------------------------------

    def _record_call(self, ctx: Context, error: BaseException | None) -> None:
        record = self.topics[ctx.topic][ctx.offset]
        value = record.value()
        data = self._data(value) if value else None
        self._calls.append(
            Call(
                ctx.event_type, data, ctx.key, ctx.attempt, ctx.topic, ctx.offset, self.now(), error
            )
        )

    def calls(self, event_type: str | None = None) -> list[Call]:
        """Every handler call (of ``event_type``), in the order they happened."""
        return [c for c in self._calls if event_type is None or c.event_type == event_type]

    def published(self, event_type: str) -> list[Any]:
        """The payload of every event of ``event_type`` published by handlers."""
        derived = set(self._tiers) | set(self._dlqs)
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
        try:
            described = self.router.codec.describe(value)
        except Exception:
            return value
        if isinstance(described, dict) and "data" in described and "event_id" in described:
            return described["data"]  # an envelope: its payload
        return described

    @property
    def _dlqs(self) -> list[str]:
        return [self.router.topic_names.dlq(s, self.group) for s in self.sources]

    @property
    def dead_letters(self) -> list[Record]:
        """Records in the dead-letter topics, with their failure headers."""
        return [r for dlq in self._dlqs for r in self.topics[dlq]]

    @property
    def committed(self) -> dict[str, int]:
        """The committed position of each topic the service reads (its partition 0)."""
        return {topic: offset for (topic, _), offset in self._memory.committed.items()}
