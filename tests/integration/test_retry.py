"""Retry tiers and dead letters on a real broker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit import envelope as env
from tests.integration.helpers import (
    committed,
    ensure_failure_topics,
    produce_events,
    read_all,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(90)
def test_fails_twice_then_succeeds_without_blocking_its_partition(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("retry", partitions=1)
    group = f"g-{unique}"
    router = Router(topics=[topic])
    attempts: list[tuple[int, float]] = []
    healthy: list[float] = []

    @router.handler("flaky", retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(2.0)))
    def flaky(data: dict[str, Any], ctx: Context) -> None:
        attempts.append((ctx.attempt, time.time()))
        if ctx.attempt < 3:
            raise ConnectionError(f"downstream down (attempt {ctx.attempt})")

    @router.handler("healthy")
    def ok(data: dict[str, Any]) -> None:
        healthy.append(time.time())

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    events = [("flaky", {"n": 0}, "k-flaky")] + [
        ("healthy", {"n": i}, f"k{i}") for i in range(1000)
    ]
    produce_events(kafka_bootstrap, topic, events)
    with RunningWorker(router, settings(kafka_bootstrap, group, [topic])):
        wait_until(lambda: len(attempts) == 3, 30, "the third attempt")
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 1)[0] == 1001, 30, "commit")
    assert [a for a, _ in attempts] == [1, 2, 3]
    assert attempts[1][1] - attempts[0][1] >= 2.0
    assert attempts[2][1] - attempts[1][1] >= 2.0
    assert len(healthy) == 1000
    assert max(healthy) < attempts[1][1], "healthy events waited for the failing one"
    assert read_all(kafka_bootstrap, f"{topic}.{group}.dlq", 1, timeout=2) == []


@pytest.mark.timeout(90)
def test_exhausted_and_non_retryable_failures_end_in_the_dlq_with_headers(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("dead", partitions=1)
    group = f"g-{unique}"
    router = Router(topics=[topic])
    calls: list[tuple[str, int]] = []
    policy = RetryPolicy(max_attempts=3, backoff=FixedBackoff(0.2), non_retryable=(KeyError,))

    @router.handler("always", retry=policy)
    def always(data: dict[str, Any], ctx: Context) -> None:
        calls.append(("always", ctx.attempt))
        raise ValueError("always broken")

    @router.handler("fatal", retry=policy)
    def fatal(data: dict[str, Any], ctx: Context) -> None:
        calls.append(("fatal", ctx.attempt))
        raise KeyError("missing customer")

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    produce_events(kafka_bootstrap, topic, [("always", {}, "a"), ("fatal", {}, "f")])
    with RunningWorker(router, settings(kafka_bootstrap, group, [topic])):
        dead = read_all(kafka_bootstrap, f"{topic}.{group}.dlq", 2, timeout=30)
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 1)[0] == 2, 30, "commit")
    assert sorted(calls) == [("always", 1), ("always", 2), ("always", 3), ("fatal", 1)]
    by_key = {m.key(): m.headers() for m in dead}
    h = by_key[b"a"]
    assert env.header_int(h, env.H_ATTEMPT) == 3
    assert env.header_str(h, env.H_ERROR_TYPE) == "ValueError"
    assert env.header_str(h, env.H_ERROR_MESSAGE) == "always broken"
    assert "Traceback" in (env.header_str(h, env.H_ERROR_TRACEBACK) or "")
    assert env.header_str(h, env.H_ORIGINAL_TOPIC) == topic
    assert env.header_int(h, env.H_ORIGINAL_OFFSET) == 0
    assert env.header_str(h, env.H_GROUP) == group
    assert env.header_int(h, env.H_FAILED_AT)
    assert sum(1 for k, _ in h if k == env.H_ORIGINAL_TOPIC) == 1
    assert env.header_int(by_key[b"f"], env.H_ATTEMPT) == 1
    assert env.header_str(by_key[b"f"], env.H_ERROR_TYPE) == "KeyError"


@pytest.mark.timeout(90)
def test_two_groups_never_rerun_each_others_failures(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("shared", partitions=2)
    failing_group, other_group = f"fail-{unique}", f"other-{unique}"
    failing, other = Router(topics=[topic]), Router(topics=[topic])
    seen_by_failing: list[int] = []
    seen_by_other: list[int] = []

    @failing.handler("e", retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))
    def fail(data: dict[str, Any]) -> None:
        seen_by_failing.append(data["n"])
        raise RuntimeError("nope")

    @other.handler("e", retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))
    def fine(data: dict[str, Any]) -> None:
        seen_by_other.append(data["n"])

    ensure_failure_topics(kafka_bootstrap, failing, topic, failing_group)
    ensure_failure_topics(kafka_bootstrap, other, topic, other_group)
    produce_events(kafka_bootstrap, topic, [("e", {"n": i}, f"k{i}") for i in range(20)])
    with (
        RunningWorker(failing, settings(kafka_bootstrap, failing_group, [topic])),
        RunningWorker(other, settings(kafka_bootstrap, other_group, [topic])),
    ):
        read_all(kafka_bootstrap, f"{topic}.{failing_group}.dlq", 20, timeout=30)
        wait_until(lambda: len(seen_by_other) >= 20, 30, "the healthy group")
        wait_until(lambda: len(seen_by_failing) >= 40, 30, "both attempts of the failing group")
    assert sorted(seen_by_other) == list(range(20))  # each exactly once: no foreign retries
    assert sorted(seen_by_failing) == sorted(list(range(20)) * 2)
    assert read_all(kafka_bootstrap, f"{topic}.{other_group}.retry.1", 1, timeout=2) == []


@pytest.mark.timeout(90)
def test_a_failing_dlq_publish_keeps_the_offset_uncommitted_and_is_loud(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("nodlq", partitions=1)
    group = f"g-{unique}"
    router = Router(topics=[topic])
    handled: list[int] = []

    @router.handler("e")
    def on(data: dict[str, Any]) -> None:
        handled.append(data["n"])

    # No retry/DLQ topics exist and the broker does not auto-create them.
    produce_events(kafka_bootstrap, topic, [("e", {"n": 1}, "k")])
    from tests.integration.helpers import produce_raw

    produce_raw(kafka_bootstrap, topic, [(b"k", b"{broken", [("event_type", b"e")])])
    produce_events(kafka_bootstrap, topic, [("e", {"n": 2}, "k")])
    conf = settings(
        kafka_bootstrap,
        group,
        [topic],
        check_topics=False,
        shutdown_timeout=1.0,
        kafka={"topic.metadata.propagation.max.ms": "500"},
    )
    with RunningWorker(router, conf) as running:
        wait_until(lambda: handled == [1, 2], 30, "events around the broken one")
        registry = running.worker.metrics.registry
        labels = {"group": group, "target": "dlq"}
        wait_until(
            lambda: (
                (registry.get_sample_value("streamkit_publish_failures_total", labels) or 0) >= 1
            ),
            30,
            "the failed DLQ publish to be counted",
        )
        # Commits keep running, and stop right before the record that has no home yet.
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 1)[0] == 1, 30, "commit")
    assert committed(kafka_bootstrap, group, topic, 1)[0] == 1


@pytest.mark.timeout(120)
def test_sigkill_while_events_wait_in_retry_tiers_loses_nothing(
    kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Any
) -> None:
    from tests.integration.helpers import Service, read_lines

    topic = make_topic("killretry", partitions=3)
    group = f"g-{unique}"
    module = "tests.integration.services.flaky"
    from tests.integration.services.flaky import router

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    produce_events(kafka_bootstrap, topic, [("flaky", {"n": i}, f"k{i}") for i in range(200)])
    out = tmp_path / "out.txt"
    # A short session: the killed member's partitions move on in seconds, not 45 s.
    fast = {"STREAMKIT_KAFKA": "session.timeout.ms=6000"}
    first = Service(
        module, bootstrap=kafka_bootstrap, group=group, topics=[topic], out=out, env=fast
    )
    first.wait_ready()
    # Every even event fails once and waits 3 s in tier 1; kill while they wait there.
    read_all(kafka_bootstrap, f"{topic}.{group}.retry.1", 100, timeout=30)
    first.kill()
    second = Service(
        module, bootstrap=kafka_bootstrap, group=group, topics=[topic], out=out, env=fast
    )
    second.wait_ready()

    def finished() -> set[int]:
        done = {int(line[5]) for line in read_lines(out) if line[0] == "ok"}
        return done if len(done) == 200 else set()

    assert wait_until(finished, 60, "every event handled") == set(range(200))
    assert second.stop() == 0
    assert read_all(kafka_bootstrap, f"{topic}.{group}.dlq", 1, timeout=2) == []


@pytest.mark.timeout(90)
def test_keep_key_order_parks_later_records_behind_a_retry(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    topic = make_topic("order", partitions=2)
    group = f"g-{unique}"
    router = Router(topics=[topic])
    seen: dict[str, list[tuple[int, int]]] = {}
    failed_once: set[int] = set()

    @router.handler(
        "step",
        keep_key_order=True,
        retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(1.0)),
    )
    def step(data: dict[str, Any], ctx: Context) -> None:
        seen.setdefault(data["key"], []).append((data["n"], ctx.attempt))
        if data["n"] in (0, 11) and data["n"] not in failed_once:
            failed_once.add(data["n"])
            raise ConnectionError("flaky downstream")

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    events = [("step", {"key": f"k{i % 2}", "n": i}, f"k{i % 2}") for i in range(20)]
    produce_events(kafka_bootstrap, topic, events)
    with RunningWorker(router, settings(kafka_bootstrap, group, [topic])):
        wait_until(lambda: sum(len(v) for v in seen.values()) == 22, 30, "20 events and 2 retries")
        wait_until(lambda: committed(kafka_bootstrap, group, topic, 2) != {}, 10, "commits")
    for key, calls in seen.items():
        # Drop the two failed first attempts: what is left is the key's records, in order.
        order = [n for n, attempt in calls if not (n in (0, 11) and attempt == 1)]
        assert order == sorted(order), (key, calls)
        assert len(order) == 10
    assert seen["k0"][:2] == [(0, 1), (0, 2)]
