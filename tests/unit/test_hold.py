"""A dependency down is a hold, not a retry budget (consumer/hold.py, on TestBroker).

The handler's dependency fails a given number of times, then answers: the event is tried
again in place with backoff, later events of its key wait behind it, other keys flow,
nothing reaches a retry tier or the DLQ, and the offset is not committed past it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from streamkit import RetryPolicy, Router, TransientDependencyError
from streamkit import envelope as env
from streamkit.consumer.state import drain
from streamkit.errors import DecodeError, TransientDecodeError
from streamkit.handlers.chain import MiddlewareChain
from streamkit.testing import TestBroker

pytestmark = pytest.mark.timeout(30)


class Store:
    """A dependency that is down for ``fails`` calls about the events in ``down_for``."""

    def __init__(self, fails: int, down_for: set[str]) -> None:
        self.fails = fails
        self.down_for = down_for
        self.tries: list[str] = []

    def call(self, event_id: str) -> None:
        self.tries.append(event_id)
        if event_id in self.down_for and self.fails > 0:
            self.fails -= 1
            raise TransientDependencyError("store refused the connection", dependency="store")


def _router(store: Store, handled: list[str], *, is_async: bool = False) -> Router:
    # A budget of one attempt: were a hold a retry, the first failure would dead-letter.
    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=1))

    if is_async:

        @router.handler("e")
        async def handle_async(data: dict[str, Any]) -> None:
            store.call(data["id"])
            handled.append(data["id"])
    else:

        @router.handler("e")
        def handle(data: dict[str, Any]) -> None:  # plain: the inline hot path
            store.call(data["id"])
            handled.append(data["id"])

    return router


async def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def _metric(broker: TestBroker, name: str) -> float:
    registry = broker._pipeline.stats._metrics.registry  # type: ignore[attr-defined]
    value = registry.get_sample_value(name, {"group": "test", "dependency": "store"})
    return float(value or 0.0)


async def _send(broker: TestBroker, events: list[tuple[str, str]]) -> None:
    for key, event_id in events:
        await broker.publish("e", {"k": key, "id": event_id}, key=key)


@pytest.mark.parametrize(
    ("is_async", "inline"), [(False, True), (False, False), (True, False)],
    ids=["hot-path", "sync-job", "task"],
)  # fmt: skip
def test_held_event_waits_in_place_others_flow_nothing_dead_lettered(
    is_async: bool, inline: bool
) -> None:
    store = Store(fails=3, down_for={"a1"})
    handled: list[str] = []

    async def scenario() -> None:
        async with TestBroker(_router(store, handled, is_async=is_async)) as broker:
            if inline:  # no middleware: a plain handler runs on the spot, without a lane
                broker._pipeline.dispatcher._chain = MiddlewareChain([])
            await _send(broker, [("a", "a1"), ("b", "b1"), ("b", "b2")])
            assert handled == ["b1", "b2"], "other keys flow while a1 waits"
            assert broker.committed.get("t", 0) == 0, "committed past the held event"
            assert _metric(broker, "streamkit_waiting_on_dependency") == 1
            # TestBroker takes one record at a time: this returns once a2 is through, and
            # a2 (same key) must not pass a1, also on the inline path.
            await _send(broker, [("a", "a2")])
            await _until(lambda: len(handled) == 4, "the held events once the store answers")
            await broker.run()
            assert handled == ["b1", "b2", "a1", "a2"]
            assert broker.dead_letters == []
            assert not [t for t in broker.topics if ".retry" in t and broker.topics[t]]
            assert broker.committed["t"] == 4
            broker._pipeline.stats.flush()
            assert _metric(broker, "streamkit_dependency_waits_total") == 3
            assert _metric(broker, "streamkit_waiting_on_dependency") == 0

    asyncio.run(scenario())


def test_backoff_is_per_dependency_one_try_per_interval_no_hot_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store(fails=10**6, down_for={f"e{i}" for i in range(5)})
    handled: list[str] = []

    async def scenario() -> None:
        async with TestBroker(_router(store, handled)) as broker:
            await _send(broker, [(f"k{i}", f"e{i}") for i in range(5)])
            assert len(store.tries) == 5
            await asyncio.sleep(1.6)  # measuring a rate: the tries in a fixed window
            # 0.1 s doubling: probes at ~0.1, 0.3, 0.7, 1.5 s -- one event each, not five.
            assert 5 + 2 <= len(store.tries) <= 5 + 5, store.tries
            assert handled == []
            assert broker._pipeline.dispatcher.hold.held == 5
            warnings = [r for r in caplog.records if "waiting on a dependency" in r.getMessage()]
            assert len(warnings) == 1, "one warning per 30 s, not one per wait"

    asyncio.run(scenario())


def test_a_revoke_does_not_wait_for_held_events_and_leaves_them_uncommitted() -> None:
    store = Store(fails=10**6, down_for={"a1", "b1"})

    async def scenario() -> None:
        async with TestBroker(_router(store, [])) as broker:
            await _send(broker, [("a", "a1"), ("b", "b1")])
            state = broker._pipeline.commits.states[("t", 0)]
            load = broker._pipeline.load
            assert state.running == 2 and not state.busy  # held: in memory, not in flight
            state.revoked = True
            started = time.monotonic()
            assert await drain([state], 10.0) == []
            assert time.monotonic() - started < 1.0, "the drain waited for a held event"
            assert state.tracker.position == 0, "the held offset is the commit position"
            # The next try drops them: lane and buffer freed, nothing marked done.
            await _until(lambda: load.buffered == 0, "the held events dropped")
            assert broker.committed.get("t", 0) == 0
            assert broker.dead_letters == []

    asyncio.run(scenario())


class FlakyDecoder:
    """A codec whose decoder needs a service that is down for the first ``down`` calls;
    once it answers, a value of ``b"bad"`` turns out to be bad input."""

    family = "flaky"

    def __init__(self, down: int) -> None:
        self.down = down

    def route(self, value: bytes) -> tuple[str | None, Any]:
        return "e", None

    def decoder(self, target: Any) -> Any:
        def decode(value: bytes, parsed: Any) -> tuple[Any, str | None]:
            if self.down > 0:
                self.down -= 1
                raise TransientDecodeError("schema service refused", dependency="schemas")
            if value == b"bad":
                raise DecodeError("not a known schema", raw=value)
            return {"id": value.decode()}, None

        return decode

    def encode(self, event_type: str, data: Any, *, event_id: str) -> bytes:
        return str(data).encode()

    def describe(self, value: bytes) -> Any:
        return value.decode()


def test_a_held_record_is_decoded_again_and_bad_input_then_goes_to_the_dlq() -> None:
    handled: list[str] = []
    router = Router(topics=["t"], codec=FlakyDecoder(down=3), retry=RetryPolicy(max_attempts=1))

    @router.handler("e")
    def handle(data: dict[str, Any]) -> None:
        handled.append(data["id"])

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            await broker.send_raw(b"good", key=b"a")
            await broker.send_raw(b"bad", key=b"b")
            await _until(lambda: broker._pipeline.dispatcher.hold.held == 0, "the hold empty")
            await broker.run()
            assert handled == ["good"]
            dead = broker.dead_letters
            assert [d.value() for d in dead] == [b"bad"]
            assert [d.header(env.H_ERROR_TYPE) for d in dead] == ["DecodeError"]
            assert not [t for t in broker.topics if ".retry" in t and broker.topics[t]]

    asyncio.run(scenario())


def test_a_middleware_whose_dependency_is_down_holds_the_event_not_skips_its_guard() -> None:
    # A middleware that cannot reach what it guards with (a dedupe store, say) must not be
    # treated as a broken middleware -- that would run the handler without the guard.
    from streamkit import Context, Middleware
    from streamkit.handlers.middleware import CallNext

    store, handled = Store(fails=2, down_for={"k"}), []  # type: ignore[var-annotated]

    class Guard(Middleware):
        async def handle(self, ctx: Context, call_next: CallNext) -> None:
            store.call((ctx.key or b"").decode())
            await call_next()

    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=1), middleware=[Guard()])

    @router.handler("e")
    def handle(data: dict[str, Any]) -> None:
        handled.append(data["id"])

    async def scenario() -> None:
        async with TestBroker(router) as broker:
            await broker.publish("e", {"id": "a"}, key="k")
            await _until(lambda: handled == ["a"], "the held event to run once its guard is back")
            assert store.tries == ["k", "k", "k"]  # held twice, then through
            assert broker.dead_letters == []

    asyncio.run(scenario())
