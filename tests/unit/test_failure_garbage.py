"""A failed event leaves no reference cycle behind: freed at once, not by the collector.

Under a burst of failures (a dependency down), cycles through each exception's traceback
made the cyclic collector run ever more often and keep dead frames alive until it did.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit.handlers.chain import MiddlewareChain
from streamkit.testing import TestBroker


def test_failed_events_leave_no_cyclic_garbage() -> None:
    router = Router(topics=["t"], retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))
    attempts: list[int] = []

    @router.handler("e")
    def fails_once(data: dict[str, Any], ctx: Context) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ValueError("down")

    @router.handler("plain")
    def plain_fails_once(data: dict[str, Any]) -> None:  # the hot path without a Context
        attempts.append(0)
        raise ValueError("down")

    async def scenario() -> int:
        async with TestBroker(router) as broker:
            # As a worker without middleware runs: the handler called straight, no scope.
            broker._pipeline.dispatcher._chain = MiddlewareChain([])
            await broker.publish("e", {"n": -1})  # warm-up: first-use caches, lazy imports
            gc.collect()
            gc.disable()
            try:
                for n in range(50):
                    await broker.publish("e", {"n": n})
                    await broker.publish("plain", {"n": n})
                await broker.run()
                return gc.collect()  # what only the collector could free
            finally:
                gc.enable()

    unreachable = asyncio.run(scenario())
    assert attempts.count(1) == 51 and attempts.count(2) == 51  # each failed, then retried
    assert attempts.count(0) == 100  # the plain one failed on both of its attempts
    assert unreachable < 20, f"{unreachable} objects in cycles after 150 failures"
