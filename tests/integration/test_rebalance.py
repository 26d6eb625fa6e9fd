"""A member joins mid-stream and leaves again: nothing lost, no commit after a revocation."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from confluent_kafka import TopicPartition

import streamkit.consumer.pollthread as pollthread
import streamkit.consumer.runtime as runtime
from streamkit import Context, FixedBackoff, RetryPolicy, Router, Settings, Worker
from streamkit.consumer.commits import KafkaCommits
from streamkit.consumer.rebalance import RebalanceBridge
from streamkit.consumer.state import Load, PartitionState
from streamkit.retry.topics import Tier
from tests.integration.helpers import (
    committed,
    end_offsets,
    ensure_failure_topics,
    produce_events,
    wait_until,
)
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka
JOURNAL: list[tuple[str, str, str, int]] = []  # (what, member, topic, partition)
LOCK = threading.Lock()


def note(what: str, member: str, tps: list[TopicPartition]) -> None:
    with LOCK:
        JOURNAL.extend((what, member, tp.topic, tp.partition) for tp in tps)


class SpyCommits(KafkaCommits):
    """The real commit owner, journaling what it commits and what it is given."""

    member = "?"

    def assign(self, partitions: Any) -> list[PartitionState]:
        fresh = super().assign(partitions)
        note("assigned", self.member, [TopicPartition(s.topic, s.partition) for s in fresh])
        return fresh

    def commit_due(self) -> None:
        note("commit", self.member, self.positions(self.states.values()))
        super().commit_due()

    def commit_sync(self, offsets: list[TopicPartition]) -> bool:
        note("commit", self.member, offsets)
        return super().commit_sync(offsets)


class SpyBridge(RebalanceBridge):
    """Notes a revocation once its callback returned: no commit may follow it."""

    def on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        super().on_revoke(consumer, partitions)
        note("revoked", self._commits.member, partitions)  # type: ignore[attr-defined]

    def on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        super().on_lost(consumer, partitions)
        note("revoked", self._commits.member, partitions)  # type: ignore[attr-defined]


class SpyWorker(Worker):
    def __init__(self, router: Router, settings: Settings, **kwargs: Any) -> None:
        def spy(tiers: dict[str, Tier], load: Load) -> SpyCommits:
            commits = SpyCommits(tiers, load)
            commits.member = settings.kafka["client.id"]
            return commits

        super().__init__(router, settings, commits=spy, **kwargs)


def commits_after_revocation(journal: list[tuple[str, str, str, int]]) -> list[Any]:
    owned: set[tuple[str, str, int]] = set()
    bad = []
    for what, member, topic, partition in journal:
        key = (member, topic, partition)
        if what == "assigned":
            owned.add(key)
        elif what == "revoked":
            owned.discard(key)
        elif key not in owned:
            bad.append((what, member, topic, partition))
    return bad


@pytest.mark.timeout(180)
def test_join_and_leave_mid_stream(
    kafka_bootstrap: str, make_topic: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "RebalanceBridge", SpyBridge)
    JOURNAL.clear()
    topic = make_topic("rebal", partitions=6)
    group = f"g-{unique}"
    handled: dict[tuple[int, int], int] = {}
    router = Router(topics=[topic])

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        await asyncio.sleep(0.002)  # keep work in flight when the rebalance hits
        handled[(ctx.partition, ctx.offset)] = handled.get((ctx.partition, ctx.offset), 0) + 1

    def conf(member: str) -> Any:
        return settings(
            kafka_bootstrap, group, [topic], check_topics=False, kafka={"client.id": member}
        )

    produce_events(kafka_bootstrap, topic, [("e", {"n": i}, f"k{i}") for i in range(3000)])
    a = RunningWorker(router, conf("A"), worker_cls=SpyWorker).start()
    wait_until(lambda: len(handled) >= 500, 30, "A to be busy")
    b = RunningWorker(router, conf("B"), worker_cls=SpyWorker).start()
    produce_events(kafka_bootstrap, topic, [("e", {"n": i}, f"k{i}") for i in range(3000, 6000)])
    wait_until(lambda: any(w == "B" for what, w, *_ in JOURNAL if what == "commit"), 30, "B")
    b.stop()
    wait_until(lambda: len(handled) >= 6000, 60, "every event handled")
    ends = end_offsets(kafka_bootstrap, topic, 6)
    wait_until(lambda: committed(kafka_bootstrap, group, topic, 6) == ends, 30, "final commits")
    a.stop()
    assert sum(ends.values()) == 6000
    assert len(handled) == 6000  # nothing lost
    assert {"A", "B"} <= {m for what, m, *_ in JOURNAL if what == "revoked"}
    assert commits_after_revocation(JOURNAL) == []


class SettleSpyWorker(SpyWorker):
    """Counts revokes fired by a poll on the loop thread with failure acks pending."""

    settled = 0

    def _settle_acks(self, timeout: float) -> None:
        type(self).settled += 1
        super()._settle_acks(timeout)


@pytest.mark.timeout(180)
def test_a_rebalance_while_failure_records_await_acks_commits_only_what_is_done(
    kafka_bootstrap: str, make_topic: Any, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sync handler failing every 4th event once: the worker polls on the loop thread
    while retry records await their acks (linger 50 ms keeps some pending), so a revoke
    fires there and settles them first. Nothing is lost, nothing committed after it."""
    monkeypatch.setattr(runtime, "RebalanceBridge", SpyBridge)
    JOURNAL.clear()
    SettleSpyWorker.settled = 0
    stuck: list[BaseException] = []  # rebalance work on the loop thread that had to wait
    real_drive = pollthread._drive

    def drive(coro: Any) -> Any:
        try:
            return real_drive(coro)
        except BaseException as exc:
            stuck.append(exc)
            raise

    monkeypatch.setattr(pollthread, "_drive", drive)
    topic = make_topic("rebal-acks", partitions=6)
    group = f"g-{unique}"
    ok: dict[int, int] = {}
    router = Router(topics=[topic])

    @router.handler("e", retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))
    def on(data: dict[str, Any], ctx: Context) -> None:
        if ctx.attempt == 1 and data["n"] % 4 == 0:
            raise ValueError("fails once")
        time.sleep(0.0002)  # busy (polling on the loop thread) when the rebalance hits
        ok[data["n"]] = ok.get(data["n"], 0) + 1

    def conf(member: str) -> Any:
        client = {"client.id": member, "linger.ms": "50"}
        return settings(kafka_bootstrap, group, [topic], kafka=client)

    ensure_failure_topics(kafka_bootstrap, router, topic, group)
    produce_events(kafka_bootstrap, topic, [("e", {"n": i}, f"k{i}") for i in range(10_000)])
    a = RunningWorker(router, conf("A"), worker_cls=SettleSpyWorker).start()
    wait_until(lambda: len(ok) >= 2000, 30, "A to be busy")
    b = RunningWorker(router, conf("B"), worker_cls=SettleSpyWorker).start()
    more = [("e", {"n": i}, f"k{i}") for i in range(10_000, 20_000)]
    produce_events(kafka_bootstrap, topic, more)
    wait_until(lambda: any(w == "B" for what, w, *_ in JOURNAL if what == "commit"), 30, "B")
    b.stop()
    wait_until(lambda: len(ok) >= 20_000, 90, "every event handled")
    a.stop()
    assert sorted(ok) == list(range(20_000))  # nothing lost
    assert {"A", "B"} <= {m for what, m, *_ in JOURNAL if what == "revoked"}
    assert commits_after_revocation(JOURNAL) == []
    assert SettleSpyWorker.settled >= 1  # a revoke fired inline with acks pending
    assert stuck == []  # ...and found them settled: it committed what was done
