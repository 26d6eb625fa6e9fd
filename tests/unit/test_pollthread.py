"""Rebalance callbacks fired by a poll on the loop thread (PollThread.inline): they
cannot wait for the loop, so what is still in flight is settled first, or abandoned."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

from streamkit.consumer.commits import KafkaCommits
from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.rebalance import RebalanceBridge
from streamkit.consumer.state import Load, PartitionState, drain
from streamkit.retry.topics import tier_map

TPS = [TopicPartition("t", 0), TopicPartition("t", 1)]


class FakeClient:
    def __init__(self) -> None:
        self.commits: list[list[tuple[str, int, int]]] = []

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(t.topic, t.partition, t.offset) for t in offsets])


def _revoke_inline(
    settle: Callable[[list[PartitionState], float], None], *, assign: bool = False
) -> tuple[list[Any], list[float]]:
    """p0: 100 events done since the last commit; p1: one whose retry record awaits its
    ack. Revoke both (or assign) from inside an inline poll; return the commits made and
    the timeouts settle was called with."""

    async def main() -> tuple[list[Any], list[float]]:
        loop = asyncio.get_running_loop()
        commits = KafkaCommits(tier_map(["t"], "g", 0, {}), Load())
        client = FakeClient()
        commits.attach(client, loop)  # type: ignore[arg-type]
        p0, p1 = commits.assign([("t", 0), ("t", 1)])
        for offset in range(100):
            p0.tracker.begin(offset, 0)
            p0.tracker.finish(offset)
        p1.tracker.begin(0, 0)
        p1.ack_started()
        calls: list[float] = []

        def hook(timeout: float) -> None:
            calls.append(timeout)
            settle([p0, p1], timeout)

        poll = PollThread(loop)
        bridge = RebalanceBridge(
            poll=poll, commits=commits, drain=drain, detached=lambda s: None,
            rebalanced=lambda k, p: None, revoke_timeout=3.0, settle=hook,
        )  # fmt: skip
        with poll.inline():
            if assign:
                bridge.on_assign(_Consumer(), TPS)
            else:
                bridge.on_revoke(None, TPS)
        poll.shutdown()
        return client.commits, calls

    return asyncio.run(main())


class _Consumer:
    def resume(self, partitions: Any) -> None:
        pass


def _acked(states: list[PartitionState], timeout: float) -> None:
    """What the worker's settle does when the broker answers: the ack callback runs."""
    states[1].tracker.finish(0)
    states[1].ack_ended()


def test_a_revoke_inline_settles_pending_acks_then_commits_everything_done() -> None:
    commits, calls = _revoke_inline(_acked)
    assert calls == [3.0]  # bounded by the revoke timeout
    assert commits == [[("t", 0, 100), ("t", 1, 1)]]


def test_a_revoke_inline_with_an_ack_still_pending_commits_the_rest() -> None:
    # The retry record's publish failed and waits out a backoff: settling cannot help.
    # Its partition is committed up to its pending offset (read again from there by the
    # next owner: at-least-once); the other up to what is done.
    commits, _ = _revoke_inline(lambda states, timeout: None)
    assert commits == [[("t", 0, 100), ("t", 1, 0)]]  # p1: from its pending offset on


def test_a_settle_that_fails_still_lets_the_revoke_commit_what_is_done() -> None:
    def broken(states: list[PartitionState], timeout: float) -> None:
        raise RuntimeError("flush failed")

    commits, _ = _revoke_inline(broken)
    assert commits == [[("t", 0, 100), ("t", 1, 0)]]


def test_an_assignment_inline_settles_nothing() -> None:
    _, calls = _revoke_inline(_acked, assign=True)
    assert calls == []
