"""Dedupe middleware semantics on the in-memory broker: skip, count, commit, retry, hold."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from streamkit import Context, Router
from streamkit.codecs.base import event_record
from streamkit.codecs.json import JSON_ENVELOPE
from streamkit.errors import ConfigError
from streamkit.handlers.middleware import CallNext
from streamkit.idempotency import Backoff, Dedupe, MemoryStore, StoreUnavailableError
from streamkit.idempotency.base import Hold
from streamkit.observability.metrics import Metrics
from streamkit.retry.policy import RetryPolicy
from streamkit.testing import TestBroker


def _append(broker: TestBroker, event_id: str, data: dict[str, Any], etype: str = "t") -> None:
    rec = event_record(JSON_ENVELOPE, broker.source, etype, data, key="k", event_id=event_id)
    broker.append(rec.topic, rec.value, key=rec.key, headers=rec.headers)


def _sample(broker: TestBroker, name: str, **labels: str) -> float | None:
    return broker.metrics.registry.get_sample_value(name, {"group": "test", **labels})


def test_duplicate_is_skipped_counted_logged_and_committed() -> None:
    seen: list[int] = []
    router = Router(topics=["events"], middleware=[Dedupe(MemoryStore())])

    @router.handler("t")
    def handle(data: dict[str, int]) -> None:
        seen.append(data["n"])

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            for n, eid in enumerate(["a", "b", "a", "c", "b"]):
                _append(broker, eid, {"n": n})
            await broker.run()
            return broker

    with capture_logs() as logs:  # whatever an earlier test configured structlog to
        broker = asyncio.run(scenario())
    assert seen == [0, 1, 3]
    dup = "streamkit_duplicates_skipped_total"
    assert _sample(broker, dup, topic="events", event_type="t") == 2
    assert _sample(broker, "streamkit_events_total", topic="events", event_type="t",
                   outcome="skipped") == 2  # fmt: skip
    assert broker.committed["events"] == 5  # the duplicates' offsets are done too
    duplicates = [line for line in logs if line["event"] == "duplicate skipped"]
    assert [line["log_level"] for line in duplicates] == ["debug", "debug"]
    assert duplicates[0]["key"] == "a"


def test_failed_handler_leaves_key_unmarked_so_the_retry_runs() -> None:
    calls: list[str] = []
    router = Router(topics=["events"], middleware=[Dedupe(MemoryStore())],
                    retry=RetryPolicy(max_attempts=3))  # fmt: skip

    @router.handler("t")
    def handle(data: dict[str, int], ctx: Context) -> None:
        calls.append(f"attempt{ctx.attempt}")
        if ctx.attempt == 1:
            raise RuntimeError("flaky")

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            _append(broker, "a", {"n": 1})
            await broker.run()
            _append(broker, "a", {"n": 1})  # redelivered after success: skipped
            await broker.run()
            return broker

    broker = asyncio.run(scenario())
    assert calls == ["attempt1", "attempt2"]
    assert broker.dead_letters == []


def test_key_function_for_bare_payloads_and_event_type_filter() -> None:
    seen: list[str] = []
    dedupe = Dedupe(MemoryStore(), key=lambda ctx: ctx.payload["payment_id"],
                    event_types=["paid"])  # fmt: skip
    router = Router(topics=["events"], middleware=[dedupe])

    @router.handler("paid")
    def paid(data: dict[str, str]) -> None:
        seen.append("paid:" + data["payment_id"])

    @router.handler("other")
    def other(data: dict[str, str]) -> None:
        seen.append("other:" + data["payment_id"])

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            for i, etype in enumerate(["paid", "paid", "other", "other"]):
                _append(broker, f"id{i}", {"payment_id": "p1"}, etype)  # distinct event ids
            await broker.run()

    asyncio.run(scenario())
    assert seen == ["paid:p1", "other:p1", "other:p1"]


def test_window_is_bounded_per_partition() -> None:
    store = MemoryStore(window=2)
    seen: list[int] = []
    router = Router(topics=["events"], middleware=[Dedupe(store)])

    @router.handler("t")
    def handle(data: dict[str, int]) -> None:
        seen.append(data["n"])

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            for n, eid in enumerate(["a", "b", "c", "a", "c"]):  # "a" fell out of the window
                _append(broker, eid, {"n": n})
            await broker.run()

    asyncio.run(scenario())
    assert seen == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="window"):
        MemoryStore(window=0)


class _FlakyStore:
    """Down for the first ``down`` operations, then a memory store."""

    name = "flaky"

    def __init__(self, down: int) -> None:
        self.down = down
        self.inner = MemoryStore()

    async def run_once(self, ctx: Context, key: str, call: CallNext, hold: Hold) -> bool:
        async def check() -> None:
            if self.down > 0:
                self.down -= 1
                raise StoreUnavailableError("connection refused")

        await hold(check)
        return await self.inner.run_once(ctx, key, call, hold)


def test_store_down_holds_the_event_then_it_flows_no_dlq() -> None:
    seen: list[int] = []
    store = _FlakyStore(down=4)
    router = Router(topics=["events"], middleware=[Dedupe(store, backoff=Backoff(0.001, 0.004))])

    @router.handler("t")
    def handle(data: dict[str, int]) -> None:
        seen.append(data["n"])

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            _append(broker, "a", {"n": 1})
            await asyncio.wait_for(broker.run(), 10)
            return broker

    with capture_logs() as logs:
        broker = asyncio.run(scenario())
    assert seen == [1]
    assert broker.dead_letters == []
    assert _sample(broker, "streamkit_dedupe_store_errors_total", store="flaky") == 4
    messages = [line["event"] for line in logs if line["log_level"] == "warning"]
    # One line for the outage and one when it ends, not one per failed try.
    assert sum("dedupe store unavailable" in m for m in messages) == 1
    assert sum("dedupe store back" in m for m in messages) == 1


def test_dedupe_metrics_are_primed_at_start() -> None:
    router = Router(topics=["events"], middleware=[Dedupe(MemoryStore())])

    @router.handler("t")
    def handle(data: dict[str, int]) -> None: ...

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            return broker

    broker = asyncio.run(scenario())  # bind() primes the store's error series
    assert _sample(broker, "streamkit_dedupe_store_errors_total", store="memory") == 0
    metrics = Metrics()
    metrics.prime("test", ["events"], ["t"])  # what Worker.run does at start
    labels = {"group": "test", "topic": "events", "event_type": "t"}
    assert metrics.registry.get_sample_value("streamkit_duplicates_skipped_total", labels) == 0


def test_optional_store_arguments_are_checked() -> None:
    from streamkit.idempotency.postgres import PostgresInbox
    from streamkit.idempotency.redis import RedisStore

    with pytest.raises(ConfigError, match="identifier"):
        PostgresInbox("postgresql://x", table="inbox; drop table users")
    with pytest.raises(ConfigError, match="url= or client="):
        RedisStore()


def test_memory_dedupe_keeps_sync_handlers_off_tasks_and_io_stores_keep_the_task() -> None:
    from streamkit.handlers.chain import MiddlewareChain
    from streamkit.idempotency.redis import RedisStore

    assert MiddlewareChain([Dedupe(MemoryStore())]).runs_sync  # no I/O: the sync scope
    assert not MiddlewareChain([Dedupe(RedisStore("redis://127.0.0.1:1/0"))]).runs_sync
    seen: list[str] = []
    router = Router(topics=["events"], middleware=[Dedupe(MemoryStore())])

    @router.handler("t")
    async def handle(data: dict[str, str]) -> None:  # async handlers: the async scope
        seen.append(data["id"])

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            for eid in ["a", "a", "b"]:
                _append(broker, eid, {"id": eid})
            await broker.run()

    asyncio.run(scenario())
    assert seen == ["a", "b"]
