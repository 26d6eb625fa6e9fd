"""The Redis dedupe store against a real Redis and the real broker."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
import redis

from streamkit import Router
from streamkit.envelope import HEADER_EVENT_TYPE, encode_envelope
from streamkit.idempotency import Backoff, Dedupe
from streamkit.idempotency.redis import RedisStore
from tests.idempotency.conftest import LocalServer
from tests.integration.helpers import (
    committed,
    end_offsets,
    ensure_failure_topics,
    produce_raw,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka


def _records(ids: range, prefix: str) -> list[tuple[bytes, bytes, Any]]:
    """Envelopes with fixed event ids: sending them twice is a redelivery."""
    return [
        (f"k{n % 10}".encode(), encode_envelope("paid", {"n": n}, event_id=f"{prefix}-{n}"),
         [(HEADER_EVENT_TYPE, b"paid")])
        for n in ids
    ]  # fmt: skip


class _App:
    """A router deduping through Redis, counting handler runs per event."""

    def __init__(self, url: str, topic: str, ttl: int = 3600) -> None:
        self.runs: Counter[int] = Counter()
        self.lock = threading.Lock()
        self.store = RedisStore(url, ttl=ttl, timeout=0.5)
        dedupe = Dedupe(self.store, backoff=Backoff(0.02, 0.2))
        self.router = Router(topics=[topic], middleware=[dedupe])

        @self.router.handler("paid")
        def paid(data: dict[str, int]) -> None:
            with self.lock:
                self.runs[data["n"]] += 1

    def total(self) -> int:
        with self.lock:
            return sum(self.runs.values())


def _sample(w: RunningWorker, name: str, **labels: str) -> float:
    value = w.worker.metrics.registry.get_sample_value(name, {"group": w.worker.group, **labels})
    return value or 0.0


def _dead_letters(bootstrap: str, dlq: str) -> int:
    return sum(end_offsets(bootstrap, dlq, 3).values())


@pytest.mark.timeout(120)
def test_duplicates_within_ttl_are_skipped_after_a_restart(
    redis_server: LocalServer, kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic, group = make_topic("paid", partitions=3), f"redis-{unique}"
    first = _App(redis_server.address, topic)
    ensure_failure_topics(kafka_bootstrap, first.router, topic, group)
    produce_raw(kafka_bootstrap, topic, _records(range(200), unique))
    conf = settings(kafka_bootstrap, group, [topic])
    with RunningWorker(first.router, conf):
        wait_until(lambda: first.total() >= 200, 60, "200 handled")
    # The same 200 events again (a producer retry, a replay), and a restarted worker.
    produce_raw(kafka_bootstrap, topic, _records(range(200), unique))
    produce_raw(kafka_bootstrap, topic, _records(range(200, 210), unique))  # new ones
    second = _App(redis_server.address, topic)
    with RunningWorker(second.router, conf) as w:
        ends = end_offsets(kafka_bootstrap, topic, 3)
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 3) == ends, 60, "committed")
        skipped = _sample(w, "streamkit_duplicates_skipped_total", topic=topic, event_type="paid")
    assert second.runs == Counter(range(200, 210))  # only the new ones ran
    assert skipped == 200
    with redis.Redis.from_url(redis_server.address) as client:  # each mark expires
        ttl = client.ttl(f"streamkit:dedupe:{group}:{unique}-0")
    assert 0 < ttl <= 3600


@pytest.mark.timeout(180)
def test_redis_stopped_mid_stream_events_wait_then_flow_nothing_lost(
    redis_server: LocalServer, kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    if not redis_server.owned:
        pytest.skip("needs a Redis this session may stop (scripts/redis-local)")
    topic, group = make_topic("paid", partitions=3), f"redis-out-{unique}"
    app = _App(redis_server.address, topic)
    ensure_failure_topics(kafka_bootstrap, app.router, topic, group)
    dlq = app.router.topic_names.dlq(topic, group)
    produce_raw(kafka_bootstrap, topic, _records(range(100), unique))
    with RunningWorker(app.router, settings(kafka_bootstrap, group, [topic])) as w:
        wait_until(lambda: app.total() >= 100, 60, "100 handled")
        redis_server.stop()
        try:
            produce_raw(kafka_bootstrap, topic, _records(range(100, 300), unique))
            errors = "streamkit_dedupe_store_errors_total"
            wait_until(lambda: _sample(w, errors, store="redis") >= 5, 60, "store errors")
            with app.lock:  # none of the events sent while Redis was down ran
                assert max(app.runs) < 100
            assert _dead_letters(kafka_bootstrap, dlq) == 0
            held = committed(kafka_bootstrap, group, topic, 3)
            assert held != end_offsets(kafka_bootstrap, topic, 3)  # offsets held
        finally:
            redis_server.start()
        ends = end_offsets(kafka_bootstrap, topic, 3)
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 3) == ends, 90, "drained")
    assert app.runs == Counter(range(300))  # each exactly once: none lost, none doubled
    assert _dead_letters(kafka_bootstrap, dlq) == 0
