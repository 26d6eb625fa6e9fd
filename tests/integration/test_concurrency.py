"""Key-ordered concurrency, strict partition order, backpressure, long handlers, timeouts."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import psutil
import pytest
from confluent_kafka import Producer as RawProducer

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit.envelope import encode_envelope
from tests.integration.helpers import (
    Service,
    committed,
    ensure_failure_topics,
    produce_events,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka


def _keyed_events(n: int, keys: int) -> list[tuple[str, Any, str]]:
    return [("io", {"n": i, "seq": i // keys}, f"k{i % keys}") for i in range(n)]


@pytest.mark.timeout(180)
def test_async_handlers_run_concurrently_in_key_order(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("io", partitions=3)
    router = Router(topics=[topic])
    seen: dict[bytes, list[int]] = defaultdict(list)
    active = {"now": 0, "max": 0}

    @router.handler("io")
    async def on_io(data: dict[str, Any], ctx: Context) -> None:
        assert ctx.key is not None
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.005)  # the I/O a real handler waits on
        seen[ctx.key].append(data["seq"])
        active["now"] -= 1

    produce_events(kafka_bootstrap, topic, _keyed_events(20_000, 1000))
    with RunningWorker(
        router, settings(kafka_bootstrap, f"g-{unique}", [topic], check_topics=False)
    ):
        started = time.monotonic()
        wait_until(lambda: sum(map(len, seen.values())) >= 20_000, 120, "20,000 events")
        rate = 20_000 / (time.monotonic() - started)
    assert len(seen) == 1000
    for key, seqs in seen.items():
        assert seqs == list(range(20)), key  # every key in offset order, none lost or doubled
    one_at_a_time = 1 / 0.005
    assert rate >= 20 * one_at_a_time, f"{rate:.0f} events/s"
    assert active["max"] > 100


@pytest.mark.timeout(120)
def test_partition_ordering_is_strict(kafka_bootstrap: str, make_topic: Any, unique: str) -> None:
    topic = make_topic("strict", partitions=2)
    router = Router(topics=[topic])
    offsets: dict[int, list[int]] = defaultdict(list)

    @router.handler("io", ordering="partition")
    async def on_io(data: dict[str, Any], ctx: Context) -> None:
        await asyncio.sleep(0.0005 * (data["n"] % 3))  # uneven durations tempt reordering
        offsets[ctx.partition].append(ctx.offset)

    produce_events(kafka_bootstrap, topic, _keyed_events(2000, 50))
    with RunningWorker(
        router, settings(kafka_bootstrap, f"g-{unique}", [topic], check_topics=False)
    ):
        wait_until(lambda: sum(map(len, offsets.values())) >= 2000, 60, "2,000 events")
    for partition, seen in offsets.items():
        assert seen == sorted(seen), partition
        assert seen == list(range(len(seen)))


@pytest.mark.timeout(120)
def test_long_handlers_do_not_leave_the_group_and_timeouts_are_retried(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("long", partitions=1)
    group = f"g-{unique}"
    router = Router(topics=[topic])
    calls: list[tuple[str, int]] = []

    @router.handler("long")
    async def long_async(data: dict[str, Any], ctx: Context) -> None:
        await asyncio.sleep(5)  # longer than max.poll.interval.ms below
        calls.append(("long", ctx.attempt))

    @router.handler("blocking", blocking=True)
    def long_sync(data: dict[str, Any], ctx: Context) -> None:
        time.sleep(5)  # in the bounded thread pool, not on the loop
        calls.append(("blocking", ctx.attempt))

    @router.handler(
        "hangs", timeout=0.5, retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0))
    )
    async def hangs(data: dict[str, Any], ctx: Context) -> None:
        calls.append(("hangs", ctx.attempt))
        if ctx.attempt == 1:
            await asyncio.sleep(60)

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    produce_events(
        kafka_bootstrap, topic, [("long", {}, "a"), ("blocking", {}, "b"), ("hangs", {}, "c")]
    )
    conf = settings(
        kafka_bootstrap,
        group,
        [topic],
        kafka={
            "max.poll.interval.ms": "3000",
            "session.timeout.ms": "3000",
            "heartbeat.interval.ms": "500",
        },
    )
    with RunningWorker(router, conf) as running:
        wait_until(lambda: len(calls) == 4, 30, "all handlers to finish")
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 1)[0] == 3, 30, "commit")
        registry = running.worker.metrics.registry
        revoked = registry.get_sample_value(
            "streamkit_rebalances_total", {"group": group, "kind": "revoked"}
        )
        lost = registry.get_sample_value(
            "streamkit_rebalances_total", {"group": group, "kind": "lost"}
        )
    assert sorted(calls) == [("blocking", 1), ("hangs", 1), ("hangs", 2), ("long", 1)]
    assert revoked == 0
    assert lost == 0


def _produce_backlog(bootstrap: str, topic: str, n: int) -> None:
    producer = RawProducer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "compression.type": "lz4",
            "enable.idempotence": True,
        }
    )
    headers = [("event_type", b"tick")]
    for i in range(n):
        value = encode_envelope("tick", {"n": i}, event_id=f"e{i}")
        while True:
            try:
                producer.produce(topic, value, key=b"%d" % (i % 1000), headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0


@pytest.mark.timeout(300)
def test_a_million_event_backlog_keeps_memory_flat(
    kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    topic = make_topic("backlog", partitions=3)
    _produce_backlog(kafka_bootstrap, topic, 1_000_000)
    service = Service(
        "tests.integration.services.slow",
        bootstrap=kafka_bootstrap,
        group=f"g-{unique}",
        topics=[topic],
        out=tmp_path / "out.txt",
        env={"STREAMKIT_CHECK_TOPICS": "false"},
    )
    service.wait_ready()
    proc = psutil.Process(service.proc.pid)
    peak = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # sampling, not synchronising
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.25)
    assert service.stop() == 0
    print(f"backlog test: peak RSS {peak / 2**20:.0f} MB")  # shown with -s, for the notes
    assert peak < 250 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MB"
