"""A sync handler's publishes: its key moves on at once, its offset waits for the acks.

The dispatcher runs on a real pipeline here; the publisher holds every delivery until the
test settles it (from another thread, as the producer's would), so the order of handler
runs, acknowledgements and commit positions is the test's to choose.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from streamkit import Context, Router
from streamkit import envelope as env
from streamkit.consumer.handoff import Handoff
from streamkit.consumer.pipeline import Pipeline, build_pipeline
from streamkit.consumer.state import PartitionState
from streamkit.delivery import Delivery, DeliveryResult
from streamkit.errors import DeliveryFailedError
from streamkit.observability.metrics import Metrics
from streamkit.observability.stats import BatchStats
from streamkit.retry.policy import FixedBackoff, RetryPolicy
from streamkit.retry.topics import tier_map

OK = DeliveryResult("out", 0, 1, 0.0)


class Msg:
    """A consumed record of topic ``t``, partition 0."""

    def __init__(self, offset: int, key: bytes, n: int) -> None:
        self._offset, self._key = offset, key
        self._value = env.encode_envelope("e", {"n": n}, event_id=f"id-{n}")

    def topic(self) -> str:
        return "t"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def headers(self) -> env.Headers:
        return [(env.HEADER_EVENT_TYPE, b"e")]

    def value(self) -> bytes:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)

    def error(self) -> None:
        return None


class HeldPublisher:
    """Sends nothing: each delivery waits until the test settles it."""

    def __init__(self, handoff: Handoff) -> None:
        self.sent: list[tuple[str, Delivery]] = []
        self._handoff = handoff

    def send(self, topic: str, value: bytes | None, **_: Any) -> Delivery:
        delivery = Delivery(sink=self._handoff.settled)
        self.sent.append((topic, delivery))
        return delivery

    def topic_for(self, event_type: str) -> str:
        return "out"

    def close(self, timeout: float = 10.0) -> int:
        return 0

    def to(self, topic: str) -> list[Delivery]:
        return [d for t, d in self.sent if t == topic]


def settle(delivery: Delivery, error: BaseException | None = None) -> None:
    """Settle ``delivery`` in another thread, as the producer's thread does."""
    thread = threading.Thread(target=delivery._settle, args=(None if error else OK, error))
    thread.start()
    thread.join(5)


async def until(check: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


def relay_router(handled: list[int], **options: Any) -> Router:
    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))

    @router.handler("e", **options)
    def relay(data: dict[str, Any], ctx: Context) -> None:
        handled.append(data["n"])
        ctx.publish("relayed", data, key=ctx.key)

    return router


async def pipeline_for(router: Router) -> tuple[Pipeline, HeldPublisher, PartitionState]:
    handoff = Handoff(asyncio.get_running_loop())
    publisher = HeldPublisher(handoff)
    pipeline = build_pipeline(
        router,
        publisher,
        group="g",
        tiers=tier_map(["t"], "g", 1, router.topic_names),
        stats=BatchStats(Metrics(), "g"),
        threads=ThreadPoolExecutor(1),
        max_inflight=10,
        handoff=handoff,
    )
    (state,) = pipeline.commits.assign([("t", 0)])
    return pipeline, publisher, state


def test_the_key_runs_on_while_its_publish_awaits_the_ack_and_the_offset_waits() -> None:
    handled: list[int] = []

    async def scenario() -> None:
        pipeline, publisher, state = await pipeline_for(relay_router(handled))
        take = pipeline.dispatcher.take
        for offset in range(3):
            take(Msg(offset, b"k", offset), state)
        # Each handler ran on the spot, in order, none waiting for the previous ack.
        assert handled == [0, 1, 2]
        first, second, third = publisher.to("out")
        assert state.tracker.position == 0, "committable before its publish was acked"
        settle(second)
        settle(third)
        await until(lambda: state.awaiting == 1, "the later acks")
        assert state.tracker.position == 0, "moved past an event whose output is unacked"
        settle(first)
        await until(lambda: state.tracker.position == 3, "the position after every ack")
        assert (state.running, state.awaiting, state.load.buffered) == (0, 0, 0)

    asyncio.run(scenario())


def test_a_failed_publish_takes_its_event_down_the_failure_path() -> None:
    handled: list[int] = []

    async def scenario() -> None:
        pipeline, publisher, state = await pipeline_for(relay_router(handled))
        pipeline.dispatcher.take(Msg(0, b"k", 0), state)
        (output,) = publisher.to("out")
        settle(output, DeliveryFailedError("broker said no"))
        retry_topic = pipeline.router.topic_names.retry("t", "g", 1)
        await until(lambda: bool(publisher.to(retry_topic)), "the retry record")
        assert state.tracker.position == 0, "done before its retry record was acked"
        settle(publisher.to(retry_topic)[0])
        await until(lambda: state.tracker.position == 1, "done once the retry is acked")
        assert (state.running, state.awaiting, state.load.buffered, state.acks) == (0, 0, 0, 0)

    asyncio.run(scenario())


@pytest.mark.parametrize("inline", [True, False], ids=["ran-inline", "ran-queued"])
def test_keep_key_order_holds_the_key_until_the_publish_is_acked(inline: bool) -> None:
    handled: list[int] = []

    async def scenario() -> None:
        router = relay_router(handled, keep_key_order=True)
        pipeline, publisher, state = await pipeline_for(router)
        take = pipeline.dispatcher.take
        if not inline:  # another key's async work keeps the partition's lanes busy
            state.begin(Msg(99, b"other", 99))
        take(Msg(0, b"k", 0), state)
        await until(lambda: handled == [0], "the first event")
        take(Msg(1, b"k", 1), state)
        await asyncio.sleep(0.05)  # give a wrongly freed lane the chance to run event 1
        assert handled == [0], "the key moved on before its publish was acked"
        settle(publisher.to("out")[0])
        await until(lambda: handled == [0, 1], "the key's next event after the ack")

    asyncio.run(scenario())


def test_a_failure_publish_waiting_out_its_backoff_is_counted_until_resent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Load.resending keeps the worker from polling on the loop thread (a revoke fired
    # there could not settle such a record); it must come back to 0 once it is resent,
    # on the load it was counted on even if an exactly-once abort swapped state.load.
    import streamkit.consumer.outcomes as outcomes

    monkeypatch.setattr(outcomes, "REPUBLISH_BACKOFF", (0.01, 0.02))
    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))

    @router.handler("e")
    def fails(data: dict[str, Any]) -> None:
        raise ValueError("to the retry tier")

    async def scenario() -> None:
        pipeline, publisher, state = await pipeline_for(router)
        shared = state.load
        pipeline.dispatcher.take(Msg(0, b"k", 0), state)
        (first,) = publisher.sent
        settle(first[1], DeliveryFailedError("broker said no"))
        await until(lambda: shared.resending == 1, "the backoff")
        assert pipeline.dispatcher.load.acks == 1 and state.tracker.position == 0
        state.load = type(shared)()  # as state.disown does
        await until(lambda: len(publisher.sent) == 2, "the resend")
        assert shared.resending == 0 and state.load.resending == 0
        settle(publisher.sent[1][1])
        await until(lambda: state.tracker.position == 1, "the position after the ack")

    asyncio.run(scenario())


def test_two_publishes_the_second_failing_fail_their_event_once_after_both_settle() -> None:
    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))

    @router.handler("e")
    def fan_out(data: dict[str, Any], ctx: Context) -> None:
        ctx.publish("relayed", data, key=ctx.key)
        ctx.publish("relayed", data, key=ctx.key)

    async def scenario() -> None:
        pipeline, publisher, state = await pipeline_for(router)
        dispatcher = pipeline.dispatcher
        dispatcher.take(Msg(0, b"k", 0), state)
        first, second = publisher.to("out")
        assert (state.awaiting, state.started) == (1, 0), "offset not held for the cut"
        settle(second, DeliveryFailedError("broker said no"))
        retry_topic = pipeline.router.topic_names.retry("t", "g", 1)
        # The report's hand-off to the loop was scheduled before settle() returned: two
        # loop turns run it, and a wrong early verdict would have sent its retry record.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not publisher.to(retry_topic), "failed before every output was settled"
        settle(first)
        await until(lambda: len(publisher.to(retry_topic)) == 1, "one retry record")
        settle(publisher.to(retry_topic)[0])
        await until(lambda: state.tracker.position == 1, "done once the retry is acked")
        assert len(publisher.to(retry_topic)) == 1
        assert (state.running, state.awaiting, state.load.buffered, state.acks) == (0, 0, 0, 0)
        assert dispatcher.scheduler.running == 0, "a lane it never held was given back"
        # The key's next event still runs on the spot: nothing of its lanes is left taken.
        dispatcher.take(Msg(1, b"k", 1), state)
        assert len(publisher.to("out")) == 4

    asyncio.run(scenario())
