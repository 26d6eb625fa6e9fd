"""``ctx.emit``: records confirmed in bulk at commit points, at-least-once on a real broker.

An emitted record has no delivery report of its own: the commit point flushes the
emitter, and a record the broker refused sends its input down the failure path (after a
re-read that traces each record to its input), without losing the outputs of the events
around it.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any, NamedTuple

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


class Relay(NamedTuple):
    source: str
    out: str
    group: str
    router: Router
    handled: Counter[int]


def _relay(bootstrap: str, make_topic: Any, unique: str, name: str, **kw: Any) -> Relay:
    """Topics, a relay router and its failure topics; EVENTS events waiting (keys k0-k6)."""
    source = make_topic(f"{name}-in", partitions=kw.get("partitions", 2))
    out = make_topic(f"{name}-out", partitions=2)
    big = None
    if kw.get("big"):  # refuses what the relay emits for TRIGGER: too large
        big = make_topic(f"{name}-big", partitions=1, config={"max.message.bytes": "1024"})
    group = f"{name}-{unique}"
    router, handled = _relay_router(source, out, big)
    ensure_failure_topics(bootstrap, router, source, group)
    _produce(bootstrap, source, range(EVENTS))
    return Relay(source, out, group, router, handled)


def _produce(bootstrap: str, source: str, ns: range) -> None:
    produce_events(bootstrap, source, [("order.created", {"n": n}, f"k{n % 7}") for n in ns])


def _outputs(bootstrap: str, topic: str, expected: int) -> Counter[int]:
    return Counter(env.loads(m.value())["data"]["n"] for m in read_all(bootstrap, topic, expected))


@pytest.mark.timeout(90)
def test_emitted_records_are_confirmed_before_their_inputs_are_committed(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    r = _relay(kafka_bootstrap, make_topic, unique, "emit")
    ends = end_offsets(kafka_bootstrap, r.source, 2)
    with RunningWorker(r.router, settings(kafka_bootstrap, r.group, [r.source])) as running:
        wait_until(lambda: committed(kafka_bootstrap, r.group, r.source, 2) == ends, 45, "commits")
    assert sorted(_outputs(kafka_bootstrap, r.out, EVENTS)) == list(range(EVENTS))
    assert set(r.handled.values()) == {1}  # nothing failed: nothing read again
    produced = running.worker.metrics.registry.get_sample_value
    assert produced("streamkit_produced_total", {"outcome": "ok"}) == EVENTS


@pytest.mark.timeout(90)
def test_the_shutdown_commit_confirms_what_was_emitted_first(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    # No periodic commit in the run: the only commit is the shutdown's, and every output
    # it covers must be on the broker.
    r = _relay(kafka_bootstrap, make_topic, unique, "emit-stop")
    ends = end_offsets(kafka_bootstrap, r.source, 2)
    conf = settings(kafka_bootstrap, r.group, [r.source], commit_interval=3600)
    with RunningWorker(r.router, conf):
        wait_until(lambda: len(r.handled) == EVENTS, 45, "every event handled")
        assert committed(kafka_bootstrap, r.group, r.source, 2) != ends  # none committed yet
    assert committed(kafka_bootstrap, r.group, r.source, 2) == ends
    assert sorted(_outputs(kafka_bootstrap, r.out, EVENTS)) == list(range(EVENTS))


@pytest.mark.timeout(120)
def test_a_refused_emitted_record_sends_its_input_down_the_failure_path_once(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    r = _relay(kafka_bootstrap, make_topic, unique, "emit-bad", big=True)
    dlq, tier = f"{r.source}.{r.group}.dlq", f"{r.source}.{r.group}.retry.1"
    ends = end_offsets(kafka_bootstrap, r.source, 2)
    with RunningWorker(r.router, settings(kafka_bootstrap, r.group, [r.source])) as running:
        wait_until(lambda: committed(kafka_bootstrap, r.group, r.source, 2) == ends, 60, "commits")
        dead = read_all(kafka_bootstrap, dlq, 1, timeout=45)
        # The retry tier's partition that holds the input (as many partitions as its source).
        used = {p: end for p, end in end_offsets(kafka_bootstrap, tier, 2).items() if end}
        assert list(used.values()) == [1]
        wait_until(
            lambda: {p: committed(kafka_bootstrap, r.group, tier, 2)[p] for p in used} == used,
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
    assert 3 <= r.handled[TRIGGER] <= 4, r.handled[TRIGGER]
    assert len(dead) == 1
    headers = dict(dead[0].headers())
    assert headers[env.H_ERROR_TYPE] == b"RecordTooLargeError"
    assert env.loads(dead[0].value())["data"]["n"] == TRIGGER  # its input, as it was
    # Every other event's output is there: the events read again after the failed input
    # published again (at-least-once), none went missing.
    assert sorted(_outputs(kafka_bootstrap, r.out, EVENTS)) == list(range(EVENTS))
    assert all(r.handled[n] >= 1 for n in range(EVENTS))


@pytest.mark.timeout(120)
def test_a_revoke_confirms_what_was_emitted_before_it_commits(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    # No periodic commit: every commit is a revoke's or a shutdown's (the blocking path),
    # and each must find the outputs of what it commits on the broker.
    r = _relay(kafka_bootstrap, make_topic, unique, "emit-reb", partitions=4)

    def conf(member: str) -> Any:
        return settings(kafka_bootstrap, r.group, [r.source], commit_interval=3600,
                        kafka={"client.id": member})  # fmt: skip

    a = RunningWorker(r.router, conf("A")).start()
    wait_until(lambda: len(r.handled) == EVENTS, 45, "A to handle the backlog")
    b = RunningWorker(r.router, conf("B")).start()  # A's revoke commits what it handled
    _produce(kafka_bootstrap, r.source, range(EVENTS, 2 * EVENTS))
    wait_until(lambda: len(r.handled) == 2 * EVENTS, 45, "both to handle the rest")
    b.stop()
    a.stop()
    ends = end_offsets(kafka_bootstrap, r.source, 4)
    assert committed(kafka_bootstrap, r.group, r.source, 4) == ends
    assert sorted(_outputs(kafka_bootstrap, r.out, 2 * EVENTS)) == list(range(2 * EVENTS))
    # The revoke committed A's work: B read none of it again.
    assert set(r.handled.values()) == {1}, r.handled.most_common(3)
