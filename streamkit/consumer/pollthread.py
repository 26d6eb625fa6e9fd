"""The poll thread, and running loop-owned work from librdkafka's callbacks.

Every blocking client call (``consume``, ``commit``, ``close``) runs in one poll thread, so
the rebalance callbacks librdkafka fires inside them can hand work to the event loop and
wait for it -- the loop is free while it awaits the poll. A non-blocking poll may also run
on the loop thread itself (no thread hop) while nothing is in flight; a callback fired
from there runs its work synchronously, as it has nothing to wait for.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")


class DaemonExecutor(Executor):
    """A fixed pool of daemon threads.

    ``ThreadPoolExecutor`` joins its threads at interpreter exit, so one thread stuck in a
    blocking handler, or in a client call while the broker is down, would hold the
    process past its shutdown bound. These threads never hold the exit.
    """

    def __init__(self, threads: int, name: str) -> None:
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads = [
            threading.Thread(target=self._serve, name=f"{name}_{n}", daemon=True)
            for n in range(threads)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a pool thread."""
        future: Future[T] = Future()
        self._work.put((future, lambda: fn(*args, **kwargs)))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once the queued work is done (never waits for stuck work)."""
        for _ in self._threads:
            self._work.put(None)

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            future, call = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # handed to whoever awaits the future
                future.set_exception(exc)


class PollThread:
    """The worker's poll thread and the bridge from its callbacks to the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pool = DaemonExecutor(1, "streamkit-poll")
        self._inline = False  # a poll runs on the loop thread right now

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking client call in the poll thread."""
        return await self.loop.run_in_executor(self._pool, fn, *args)

    def later(self, fn: Callable[..., Any], *args: Any) -> None:
        """Queue ``fn(*args)`` behind the calls already queued; do not wait for it."""
        self._pool.submit(fn, *args)

    @property
    def inlined(self) -> bool:
        """True while a poll runs on the loop thread (a callback fired now cannot wait)."""
        return self._inline

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
