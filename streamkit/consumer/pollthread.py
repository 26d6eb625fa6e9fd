"""The poll thread, and running loop-owned work from librdkafka's callbacks.

Every blocking client call (``consume``, ``commit``, ``close``) runs in one poll thread, so
the rebalance callbacks librdkafka fires inside them can hand work to the event loop and
wait for it -- the loop is free while it awaits the poll. A non-blocking poll may also run
on the loop thread itself (no thread hop) while nothing is in flight; a callback fired
from there runs its work synchronously, as it has nothing to wait for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class PollThread:
    """The worker's poll thread and the bridge from its callbacks to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="streamkit-poll")
        self._inline = False  # a poll runs on the loop thread right now

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in the poll thread."""
        return await self.loop.run_in_executor(self._pool, fn, *args)

    @contextmanager
    def inline(self) -> Iterator[None]:
        """Mark a poll made on the loop thread (callbacks must not wait for the loop)."""
        self._inline = True
        try:
            yield
        finally:
            self._inline = False

    def on_loop(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop from a client callback and return its result."""
        if self._inline:
            return _drive(coro)  # already on the loop thread, with nothing in flight
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def shutdown(self) -> None:
        """Stop the thread (after the consumer was closed)."""
        self._pool.shutdown(wait=False)


def _drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that has nothing to wait for to completion, synchronously."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("rebalance work needed to wait while polling on the loop thread")
