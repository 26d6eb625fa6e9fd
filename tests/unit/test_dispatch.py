"""Dispatcher bookkeeping that is hard to reach through a broker."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from streamkit import Router, TopicNames
from streamkit.consumer.dispatch import Dispatcher, Job
from streamkit.consumer.state import PartitionState
from streamkit.consumer.stats import BatchStats
from streamkit.observability.metrics import Metrics
from streamkit.retry.failures import FailurePlanner
from streamkit.retry.topics import Tier


class Msg:
    def __init__(self, partition: int, offset: int) -> None:
        self._p, self._o = partition, offset

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return b"k%d" % self._p

    def headers(self) -> Any:
        return []

    def value(self) -> bytes:
        return b"{}"

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def test_a_revoked_waiting_job_does_not_strand_the_next_one() -> None:
    router = Router()
    ran: list[int] = []

    @router.handler("e")
    async def on(data: dict[str, Any]) -> None:
        ran.append(1)

    async def scenario() -> None:
        dispatcher = Dispatcher(
            router=router,
            producer=None,  # type: ignore[arg-type]  # no failures in this test
            planner=FailurePlanner("g", TopicNames(), 1),
            stats=BatchStats(Metrics(), "g"),
            threads=ThreadPoolExecutor(1),
            group="g",
            max_inflight=1,
        )
        spec = router.get("e")
        assert spec is not None
        live, gone = PartitionState("t", 0, Tier("t", 0)), PartitionState("t", 1, Tier("t", 1))
        gone.revoked = True
        for state in (live, gone):
            state.tracker.begin(0, 0)
            state.running = 1
        # One task was running (max_inflight=1); behind it wait a job of a partition
        # revoked meanwhile, then a job of a live partition.
        dispatcher.running, dispatcher.buffered = 1, 2
        dispatcher._per_handler[spec] = 1
        dispatcher._waiting.extend(
            [
                Job(Msg(1, 0), gone, spec, {}, None, "e", 1),
                Job(Msg(0, 0), live, spec, {}, None, "e", 1),
            ]
        )
        dispatcher._task_ended(spec)
        assert not dispatcher._waiting
        await asyncio.wait(live.tasks, timeout=5)
        assert ran == [1]
        assert live.tracker.position == 1
        assert dispatcher.running == 0

    asyncio.run(scenario())
