"""Group faults: commits that fail (a member frozen past its session), item 10's two reads.

Item 10, first read (partitions assigned under backpressure are not paused): the buffer
bound held in every run (peak = max_buffered), but in most runs the assignment deadlocked
instead: stacks showed the loop thread in ``consumer.resume()`` (flow.check) while the poll
thread, inside ``consume()``, ran ``on_assign`` and waited for the loop (30 s timeout).
Fixed: flow-control client calls run in a thread of their own (consumer/flow.py).
Second read (an abandoned blocking handler runs beside its redelivery): confirmed, strict
xfail.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from streamkit import Context, Router
from tests.faults.harness import journal_service, log_events, produce_seq, wait_seen
from tests.faults.verifier import Crash, read_journal, verify
from tests.integration.helpers import committed, end_offsets, wait_until
from tests.integration.inproc import RunningWorker, settings

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(120)
def test_commits_of_a_member_frozen_past_its_session_fail_and_nothing_is_lost(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: a member frozen (SIGSTOP) past its session timeout is replaced; when it
    # thaws its commits fail (it no longer owns the partitions), it rejoins, and no record
    # is lost; repeats are only at or after the commits of the moment it froze. Key order
    # holds within each member: the thawed one still finishes work it held in memory after
    # its successor took over (no consumer can fence a frozen process's own handlers).
    topic, group, out = make_topic("frozen", partitions=2), f"g-{unique}", tmp_path / "j.txt"
    produced = produce_seq(kafka_bootstrap, topic, keys=20, per_key=100, event_type="j.async",
                           extra={"sleep": 0.01})  # fmt: skip
    small = {"STREAMKIT_MAX_BUFFERED": "100", "STREAMKIT_BATCH_SIZE": "50"}
    frozen = journal_service(kafka_bootstrap, group, topic, out, env=small)
    frozen.wait_ready(30)
    wait_until(lambda: len(read_journal(out)) >= 300, 60, "progress before the freeze")
    frozen.signal(signal.SIGSTOP)
    at_freeze = Crash(committed(kafka_bootstrap, group, topic, 2), 10**9)
    try:
        other = journal_service(kafka_bootstrap, group, topic, out, env=small)
        other.wait_ready(40)  # after the frozen member's 6 s session ran out
        seen = len(read_journal(out))
        wait_until(lambda: len(read_journal(out)) >= seen + 200, 60, "the replacement's progress")
    finally:
        frozen.signal(signal.SIGCONT)

    def commit_failed() -> bool:
        return any(e.get("event") == "offset commit failed" for e in log_events(frozen))

    try:  # seen in most runs, not all: the thawed member may rejoin before it commits
        wait_until(commit_failed, 10, "the thawed member's commit to fail")
        print("the thawed member's commit failed, as expected")
    except AssertionError:
        print("the thawed member rejoined without a failed commit")
    wait_seen(out, produced, 90)
    assert frozen.stop(30) == 0 and other.stop(30) == 0
    assert committed(kafka_bootstrap, group, topic, 2) == end_offsets(kafka_bootstrap, topic, 2)
    verify("member frozen past its session", produced, read_journal(out),
           crashes=[at_freeze], order_per_process=True).check()  # fmt: skip


Run = tuple[int, int, float, float]  # partition, offset, start, end (monotonic)


def _gated_router(
    gate: threading.Event, runs: list[Run], starts: list[int] | None = None
) -> Router:
    """``j.async`` waits for ``gate``; ``j.block`` sleeps and notes its run in ``runs``."""
    router = Router()

    @router.handler("j.async", ordering="unordered")
    async def held(data: dict[str, Any]) -> None:
        while not gate.is_set():
            await asyncio.sleep(0.05)

    @router.handler("j.block", blocking=True)
    def slow(data: dict[str, Any], ctx: Context) -> None:
        started = time.monotonic()
        if starts is not None:
            starts.append(ctx.offset)
        time.sleep(float(data["sleep"]))
        runs.append((ctx.partition, ctx.offset, started, time.monotonic()))

    return router


@pytest.mark.timeout(90)
def test_partitions_assigned_under_backpressure_are_paused(
    kafka_bootstrap: str, make_topic, unique: str
) -> None:
    # Contract: with max_buffered=200 and handlers that never finish, the buffer stays
    # within max_buffered plus one batch, also after a rebalance hands the member new
    # partitions while its backpressure is on (cooperative-sticky: it keeps its old ones,
    # full, and is assigned the leaving member's on top).
    topic, group = make_topic("bp", partitions=4), f"g-{unique}"
    produce_seq(kafka_bootstrap, topic, keys=40, per_key=100, event_type="j.async")
    gate, runs = threading.Event(), []  # type: ignore[var-annotated]
    conf = {"max_buffered": 200, "batch_size": 50, "revoke_timeout": 1.0, "shutdown_timeout": 1.0}
    kafka = {"session.timeout.ms": "6000", "partition.assignment.strategy": "cooperative-sticky"}

    def member() -> RunningWorker:
        config = settings(kafka_bootstrap, group, [topic], kafka=kafka, **conf)
        return RunningWorker(_gated_router(gate, runs), config)

    a, b = member(), member()
    with a:
        b.start()
        wait_until(lambda: len(a.worker.states) == 2, 30, "two partitions each")
        wait_until(lambda: a.worker.pipeline.load.buffered >= 200, 30, "backpressure on")
        b.stop(30)  # its two partitions move to a, whose backpressure is on
        moved = time.monotonic()
        peak, settled = 0, None
        deadline = moved + 30  # the assignment itself: bounded, not assumed
        while time.monotonic() < deadline:  # sampling the buffer is the measurement
            peak = max(peak, a.worker.pipeline.load.buffered)
            if settled is None and len(a.worker.states) == 4:
                settled = time.monotonic()
                deadline = settled + 3  # and the buffer for 3 s after it
            time.sleep(0.05)
        owned = len(a.worker.states)
        gate.set()
    print(f"all 4 partitions owned {settled - moved if settled else -1:.1f} s after the leave")
    print(f"buffer peak after partitions moved under backpressure: {peak} (max_buffered 200)")
    assert owned == 4, f"the member owns {owned} partitions, not all 4"
    assert peak <= 250, f"buffer reached {peak}"


@pytest.mark.timeout(90)
@pytest.mark.xfail(
    strict=True,
    reason="issue 17 item 10: a blocking handler abandoned on revoke keeps running while the "
    "new owner handles the same record (one event running twice at once)",
)
def test_abandoned_blocking_handler_does_not_run_beside_its_redelivery(
    kafka_bootstrap: str, make_topic, unique: str
) -> None:
    # Contract: when a revoke abandons a blocking handler (revoke_timeout 1 s) and the
    # record is handled again by the next owner, the two runs never overlap in time.
    topic, group = make_topic("twice", partitions=2), f"g-{unique}"
    for p in range(2):
        produce_seq(kafka_bootstrap, topic, keys=1, per_key=1, event_type="j.block",
                    extra={"sleep": 4}, key_prefix=f"p{p}-")  # fmt: skip
    runs: list[Run] = []
    starts: list[int] = []
    conf = {"revoke_timeout": 1.0}
    kafka = {"session.timeout.ms": "6000"}
    a = RunningWorker(_gated_router(threading.Event(), runs, starts),
                      settings(kafka_bootstrap, group, [topic], kafka=kafka, **conf))  # fmt: skip
    b = RunningWorker(_gated_router(threading.Event(), runs, starts),
                      settings(kafka_bootstrap, group, [topic], kafka=kafka, **conf))  # fmt: skip
    ends = end_offsets(kafka_bootstrap, topic, 2)
    with a:
        wait_until(lambda: len(starts) >= 2, 20, "both records running")
        with b:
            wait_until(lambda: committed(kafka_bootstrap, group, topic, 2) == ends, 40, "commits")
            wait_until(lambda: len(runs) == len(starts), 20, "every started run to end")
    overlaps = [
        (x, y) for x in runs for y in runs
        if x is not y and x[:2] == y[:2] and x[2] < y[2] < x[3]
    ]  # fmt: skip
    assert not overlaps, f"runs of one record overlapped: {overlaps}"
