"""Exactly-once mode: an abortable transaction error on the real broker.

A record larger than its topic's ``max.message.bytes`` is refused by the broker; inside a
transaction that makes the transaction abortable (``txn_requires_abort()``) and every
later produce of it fails. streamkit must abort, rewind the partitions to their committed
offsets and do the batch's work again in a fresh transaction.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any

import pytest

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from tests.integration.eos_reader import outputs
from tests.integration.helpers import (
    committed,
    end_offsets,
    ensure_failure_topics,
    produce_events,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka
EVENTS, TRIGGER = 400, 150


@pytest.mark.timeout(90)
def test_an_abortable_error_aborts_rewinds_and_does_the_work_again(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    # Contract: txn_requires_abort() -> abort, rewind to the committed offsets, redo; a
    # read_committed reader sees each output once, a read_uncommitted one the aborted ones.
    source, out = make_topic("abort-in", partitions=2), make_topic("abort-out", partitions=2)
    big = make_topic("abort-big", partitions=1, config={"max.message.bytes": "1024"})
    group = f"abort-{unique}"
    router = Router(topics=[source], publish_topics={"invoice.requested": out, "oversized": big})
    handled: Counter[int] = Counter()
    tripped = threading.Event()  # once only: the work done again publishes normally

    @router.handler("order.created")
    async def relay(data: dict[str, Any], ctx: Context) -> None:
        handled[data["n"]] += 1
        # Awaited: this output is on the broker (in the doomed transaction) before the error.
        await ctx.publish("invoice.requested", {"n": data["n"]}, key=ctx.key)
        if data["n"] == TRIGGER and not tripped.is_set():
            tripped.set()
            ctx.publish("oversized", {"pad": os.urandom(4_000).hex()})  # MSG_SIZE_TOO_LARGE

    ensure_failure_topics(kafka_bootstrap, router, source, group)
    produce_events(
        kafka_bootstrap, source, [("order.created", {"n": n}, f"k{n % 20}") for n in range(EVENTS)]
    )
    conf = settings(kafka_bootstrap, group, [source], guarantee="exactly-once",
                    transactional_id=f"abort-{unique}")  # fmt: skip
    ends = end_offsets(kafka_bootstrap, source, 2)
    with RunningWorker(router, conf) as running:
        wait_until(lambda: committed(kafka_bootstrap, group, source, 2) == ends, 45, "commits")
        aborted = running.worker.metrics.registry.get_sample_value(
            "streamkit_transactions_total", {"group": group, "outcome": "aborted"}
        )
    assert tripped.is_set() and aborted is not None and aborted >= 1
    assert handled[TRIGGER] >= 2, "the aborted batch was not done again"
    seen = outputs(kafka_bootstrap, out, 2)
    assert sorted(seen) == list(range(EVENTS)) and set(seen.values()) == {1}, seen.most_common(3)
    everything = outputs(kafka_bootstrap, out, 2, isolation="read_uncommitted")
    assert everything[TRIGGER] >= 2, "no aborted output: the transaction was not aborted"
    assert outputs(kafka_bootstrap, big, 1, isolation="read_uncommitted") == Counter()
    # Events failed by the refused sends went nowhere a reader sees: the abort took them.
    assert outputs(kafka_bootstrap, f"{source}.{group}.retry.1", 2) == Counter()


@pytest.mark.timeout(90)
def test_a_retry_partition_paused_for_its_delay_is_read_again_after_an_abort(
    kafka_bootstrap: str, make_topic: Any, unique: str
) -> None:
    # Contract: a rewind gives fresh partition states; a retry tier paused by its delay
    # gate must be resumed with them, or its record is never handled (paused for good).
    source, out = make_topic("gate-in", partitions=1), make_topic("gate-out", partitions=1)
    big = make_topic("gate-big", partitions=1, config={"max.message.bytes": "1024"})
    group = f"gate-{unique}"
    router = Router(topics=[source], publish_topics={"invoice.requested": out, "oversized": big})
    attempts: Counter[int] = Counter()
    tripped = threading.Event()

    @router.handler("order.created", retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(3)))
    async def relay(data: dict[str, Any], ctx: Context) -> None:
        attempts[data["n"]] += 1
        if data["n"] == 0 and ctx.attempt == 1:
            raise ConnectionError("first attempt fails: 3 s in retry tier 1")
        await ctx.publish("invoice.requested", {"n": data["n"]}, key=ctx.key)
        if data["n"] == 1 and not tripped.is_set():
            tripped.set()
            ctx.publish("oversized", {"pad": os.urandom(4_000).hex()})  # MSG_SIZE_TOO_LARGE

    ensure_failure_topics(kafka_bootstrap, router, source, group)
    tier = f"{source}.{group}.retry.1"
    conf = settings(kafka_bootstrap, group, [source], guarantee="exactly-once",
                    transactional_id=f"gate-{unique}")  # fmt: skip
    with RunningWorker(router, conf):
        produce_events(kafka_bootstrap, source, [("order.created", {"n": 0}, "k")])
        # The retry record is committed and fetched: its partition waits, paused, 3 s.
        wait_until(lambda: outputs(kafka_bootstrap, tier, 1) == Counter({0: 1}), 20, "retry")
        produce_events(kafka_bootstrap, source, [("order.created", {"n": 1}, "k")])
        wait_until(tripped.is_set, 20, "the abort")
        wait_until(lambda: attempts[0] >= 2, 30, "the retry record handled after the rewind")
        wait_until(lambda: committed(kafka_bootstrap, group, tier, 1)[0] >= 1, 20, "tier commit")
    assert outputs(kafka_bootstrap, out, 1) == Counter({0: 1, 1: 1})
