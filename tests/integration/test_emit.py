"""``ctx.emit``: records confirmed in bulk at commit points, at-least-once on a real broker.

An emitted record has no delivery report of its own: the commit point flushes the
emitter, and a record the broker refused sends its input down the failure path (after a
re-read that traces each record to its input), without losing the outputs of the events
around it.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit import envelope as env
from tests.integration.helpers import (
    committed,
    end_offsets,
    ensure_failure_topics,
    produce_events,
    read_all,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka
EVENTS, TRIGGER = 300, 120


def _relay_router(source: str, out: str, big: str | None = None) -> tuple[Router, Counter[int]]:
    topics = {"order.relayed": out, **({"oversized": big} if big else {})}
    router = Router(topics=[source], publish_topics=topics)
    handled: Counter[int] = Counter()

    @router.handler("order.created", retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))
    def relay(data: dict[str, Any], ctx: Context) -> None:
        handled[data["n"]] += 1
        ctx.emit("order.relayed", {"n": data["n"]}, key=ctx.key)
        if data["n"] == TRIGGER and big is not None:  # refused by the broker: too large
            ctx.emit("oversized", {"pad": os.urandom(4_000).hex()})

    return router, handled


def _outputs(bootstrap: str, topic: str, expected: int) -> Counter[int]:
    return Counter(env.loads(m.value())["data"]["n"] for m in read_all(bootstrap, topic, expected))


@pytest.mark.timeout(90)
def test_emitted_records_are_confirmed_before_their_inputs_are_committed(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    source, out = make_topic("emit-in", partitions=2), make_topic("emit-out", partitions=2)
    group = f"emit-{unique}"
    router, handled = _relay_router(source, out)
    ensure_failure_topics(kafka_bootstrap, router, source, group)
    produce_events(
        kafka_bootstrap, source, [("order.created", {"n": n}, f"k{n % 7}") for n in range(EVENTS)]
    )
    ends = end_offsets(kafka_bootstrap, source, 2)
    with RunningWorker(router, settings(kafka_bootstrap, group, [source])):
        wait_until(lambda: committed(kafka_bootstrap, group, source, 2) == ends, 45, "commits")
    assert sorted(_outputs(kafka_bootstrap, out, EVENTS)) == list(range(EVENTS))
    assert set(handled.values()) == {1}  # nothing failed: nothing read again


@pytest.mark.timeout(90)
def test_the_shutdown_commit_confirms_what_was_emitted_first(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    # No periodic commit in the run: the only commit is the shutdown's, and every output
    # it covers must be on the broker.
    source, out = (
        make_topic("emit-stop-in", partitions=2),
        make_topic("emit-stop-out", partitions=2),
    )
    group = f"emit-stop-{unique}"
    router, handled = _relay_router(source, out)
    ensure_failure_topics(kafka_bootstrap, router, source, group)
    produce_events(
        kafka_bootstrap, source, [("order.created", {"n": n}, f"k{n % 7}") for n in range(EVENTS)]
    )
    ends = end_offsets(kafka_bootstrap, source, 2)
    conf = settings(kafka_bootstrap, group, [source], commit_interval=3600)
    with RunningWorker(router, conf):
        wait_until(lambda: len(handled) == EVENTS, 45, "every event handled")
        assert committed(kafka_bootstrap, group, source, 2) != ends  # nothing committed yet
    assert committed(kafka_bootstrap, group, source, 2) == ends
    assert sorted(_outputs(kafka_bootstrap, out, EVENTS)) == list(range(EVENTS))


@pytest.mark.timeout(120)
def test_a_refused_emitted_record_sends_its_input_down_the_failure_path_once(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    source, out = make_topic("emit-bad-in", partitions=2), make_topic("emit-bad-out", partitions=2)
    big = make_topic("emit-big", partitions=1, config={"max.message.bytes": "1024"})
    group = f"emit-bad-{unique}"
    router, handled = _relay_router(source, out, big)
    ensure_failure_topics(kafka_bootstrap, router, source, group)
    produce_events(
        kafka_bootstrap, source, [("order.created", {"n": n}, f"k{n % 7}") for n in range(EVENTS)]
    )
    dlq, tier = f"{source}.{group}.dlq", f"{source}.{group}.retry.1"
    ends = end_offsets(kafka_bootstrap, source, 2)
    with RunningWorker(router, settings(kafka_bootstrap, group, [source])) as running:
        wait_until(lambda: committed(kafka_bootstrap, group, source, 2) == ends, 60, "commits")
        dead = read_all(kafka_bootstrap, dlq, 1, timeout=45)
        # The retry tier's partition that holds the input (as many partitions as its source).
        used = {p: end for p, end in end_offsets(kafka_bootstrap, tier, 2).items() if end}
        assert list(used.values()) == [1]
        wait_until(
            lambda: {p: committed(kafka_bootstrap, group, tier, 2)[p] for p in used} == used,
            30,
            "the retry tier's commit",
        )
        emitter = running.worker.emitter
        assert emitter is not None
        wait_until(lambda: not emitter.traced, 30, "tracing to stop once all is committed")
    # Untraced, its failure named no input: everything since the last commit was read
    # again, traced (2 runs). Traced, its input was named and sent to the retry tier, whose
    # run failed too (3; a fourth if tracing had stopped by then: untraced once more), then
    # to the DLQ. Bounded: no hot loop.
    assert 3 <= handled[TRIGGER] <= 4, handled[TRIGGER]
    assert len(dead) == 1
    headers = dict(dead[0].headers())
    assert headers[env.H_ERROR_TYPE] == b"RecordTooLargeError"
    assert env.loads(dead[0].value())["data"]["n"] == TRIGGER  # its input, as it was
    # Every other event's output is there: the events read again after the failed input
    # published again (at-least-once), none went missing.
    assert sorted(_outputs(kafka_bootstrap, out, EVENTS)) == list(range(EVENTS))
    assert all(handled[n] >= 1 for n in range(EVENTS))


@pytest.mark.timeout(120)
def test_a_revoke_confirms_what_was_emitted_before_it_commits(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    # No periodic commit: every commit is a revoke's or a shutdown's (the blocking path),
    # and each must find the outputs of what it commits on the broker.
    source, out = make_topic("emit-reb-in", partitions=4), make_topic("emit-reb-out", partitions=2)
    group = f"emit-reb-{unique}"
    router, handled = _relay_router(source, out)
    ensure_failure_topics(kafka_bootstrap, router, source, group)
    events = [("order.created", {"n": n}, f"k{n % 13}") for n in range(EVENTS)]
    produce_events(kafka_bootstrap, source, events)

    def conf(member: str) -> Any:
        return settings(kafka_bootstrap, group, [source], commit_interval=3600,
                        kafka={"client.id": member})  # fmt: skip

    a = RunningWorker(router, conf("A")).start()
    wait_until(lambda: len(handled) == EVENTS, 45, "A to handle the backlog")
    b = RunningWorker(router, conf("B")).start()  # A's revoke commits what it handled
    more = [("order.created", {"n": n}, f"k{n % 13}") for n in range(EVENTS, 2 * EVENTS)]
    produce_events(kafka_bootstrap, source, more)
    wait_until(lambda: len(handled) == 2 * EVENTS, 45, "both to handle the rest")
    b.stop()
    a.stop()
    assert committed(kafka_bootstrap, group, source, 4) == end_offsets(kafka_bootstrap, source, 4)
    assert sorted(_outputs(kafka_bootstrap, out, 2 * EVENTS)) == list(range(2 * EVENTS))
    # The revoke committed A's work: B read none of it again.
    assert set(handled.values()) == {1}, handled.most_common(3)
