"""A middleware with a scope and a publish hook is one new module on the middleware seam."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from tests.behaviour.backends import Backend
from tests.seams.recording_middleware import CURRENT, Broken, Recording


def test_scopes_wrap_sync_async_and_blocking_handlers_and_carry_contextvars(
    run_on: Callable[..., None],
) -> None:
    mw = Recording()
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
        for t in ("sync", "async", "blocking", "fails"):  # keys differ: scopes may interleave
            assert [side for side, kind in mw.log if kind == t] == ["enter", "exit"]
        assert sorted(k for s, k in mw.log if s == "publish") == ["dlq", "event"]
        [out] = await b.records(b.topic("outputs"))  # type: ignore[attr-defined]
        assert out.header("x-trace") == "trace-1"  # ctx.state from the scope of offset 1
        [dead] = await b.records(router.topic_names.dlq(b.source, b.group))
        assert dead.header("x-trace") == "trace-3"
        assert CURRENT.get() is None  # nothing leaked out of the scopes

    run_on(router, scenario, extra_topics=["outputs"])


def test_a_failing_middleware_never_stops_the_handler_or_the_worker(
    run_on: Callable[..., None],
) -> None:
    router = Router(topics=["events"], middleware=[Broken()], publish_topics={"out": "outputs"})
    seen: list[str] = []

    @router.handler("e")
    async def on(data: dict[str, Any], ctx: Context) -> None:
        seen.append(data["id"])
        await ctx.publish("out", data)

    async def scenario(b: Backend) -> None:
        await b.send("e", {"id": "a"})
        await b.send("e", {"id": "b"})
        await b.settle()
        assert seen == ["a", "b"]
        assert len(await b.records(b.topic("outputs"))) == 2  # type: ignore[attr-defined]
        assert await b.committed() == 2

    run_on(router, scenario, extra_topics=["outputs"])
