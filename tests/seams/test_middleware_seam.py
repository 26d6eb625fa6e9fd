"""A middleware with a scope and a publish hook is one new module on the middleware seam."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from streamkit import Context, FixedBackoff, Middleware, RetryPolicy, Router
from tests.behaviour.backends import Backend
from tests.seams.recording_middleware import (
    CURRENT,
    Broken,
    BrokenSync,
    Recording,
    SyncRecording,
)


@pytest.mark.parametrize("kind", [Recording, SyncRecording])
def test_scopes_wrap_sync_async_and_blocking_handlers_and_carry_contextvars(
    run_on: Callable[..., None], kind: type[Recording]
) -> None:
    mw = kind()
    router = Router(
        topics=["events"],
        middleware=[mw],
        retry=RetryPolicy(max_attempts=1, backoff=FixedBackoff(0)),
        publish_topics={"out": "outputs"},
    )
    inside: dict[str, Any] = {}

    @router.handler("sync")
    def on_sync(data: dict[str, Any]) -> None:
        inside["sync"] = CURRENT.get()

    @router.handler("async")
    async def on_async(data: dict[str, Any], ctx: Context) -> None:
        inside["async"] = CURRENT.get()
        await ctx.publish("out", {"n": 1})

    @router.handler("blocking", blocking=True)
    def on_blocking(data: dict[str, Any]) -> None:
        inside["blocking"] = (CURRENT.get(), threading.current_thread().name)

    @router.handler("fails")
    def on_fail(data: dict[str, Any]) -> None:
        raise RuntimeError("to the DLQ")

    async def scenario(b: Backend) -> None:
        for event_type in ("sync", "async", "blocking", "fails"):
            await b.send(event_type, {}, key=event_type)
        await b.settle()
        assert inside["sync"] == "sync" and inside["async"] == "async"
        assert inside["blocking"][0] == "blocking"
        assert inside["blocking"][1] != "MainThread"  # the contextvar crossed into the thread
        sync_scope = kind is SyncRecording  # plain sync handlers take the sync form
        for t in ("sync", "async", "blocking", "fails"):  # keys differ: scopes may interleave
            expected = ["enter", "exit"]
            if sync_scope and t in ("sync", "fails"):
                expected = ["enter", "sync scope", "exit"]
            assert [side for side, k in mw.log if k == t] == expected
        assert sorted(k for s, k in mw.log if s == "publish") == ["dlq", "event"]
        [out] = await b.records(b.topic("outputs"))  # type: ignore[attr-defined]
        assert out.header("x-trace") == "trace-1"  # ctx.state from the scope of offset 1
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert dead.header("x-trace") == "trace-3"
        assert CURRENT.get() is None  # nothing leaked out of the scopes

    run_on(router, scenario, extra_topics=["outputs"])


@pytest.mark.parametrize("kind", [Broken, BrokenSync])
def test_a_failing_middleware_never_stops_the_handler_or_the_worker(
    run_on: Callable[..., None], kind: type[Middleware]
) -> None:
    router = Router(topics=["events"], middleware=[kind()], publish_topics={"out": "outputs"})
    seen: list[str] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        seen.append(data["id"])
        await ctx.publish("out", data)

    @router.handler("s")
    def on_sync(data: dict[str, Any], ctx: Context) -> None:
        seen.append(data["id"])
        ctx.publish("out", data)

    async def scenario(b: Backend) -> None:
        await b.send("e", {"id": "a"})
        await b.send("s", {"id": "b"})
        await b.send("e", {"id": "c"})
        await b.settle()
        assert seen == ["a", "b", "c"]
        assert len(await b.records(b.topic("outputs"))) == 3  # type: ignore[attr-defined]
        assert await b.committed() == 3

    run_on(router, scenario, extra_topics=["outputs"])
