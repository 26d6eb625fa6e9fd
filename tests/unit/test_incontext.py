"""InContext: a coroutine awaited in a contextvars context of its own, without a task."""

import asyncio
import contextvars

import pytest

from streamkit.consumer.incontext import InContext

VAR: "contextvars.ContextVar[str]" = contextvars.ContextVar("var", default="outer")


def test_each_step_runs_in_the_given_context_and_the_result_comes_back() -> None:
    async def job() -> None:
        seen.append(VAR.get())
        VAR.set("job")
        await asyncio.sleep(0)  # a step of its own, still in its context
        seen.append(VAR.get())
        await asyncio.sleep(0.001)  # waits on a future the task waits on for it
        seen.append(VAR.get())

    seen: list[str] = []

    async def main() -> str:
        ctx = contextvars.copy_context()
        ctx.run(VAR.set, "inner")
        await InContext(job(), ctx)
        return VAR.get()

    assert asyncio.run(main()) == "outer"  # nothing leaked into the awaiting task
    assert seen == ["inner", "job", "job"]


def test_cancelling_the_task_cancels_the_coroutine_inside_its_context() -> None:
    started = asyncio.Event()
    caught: list[str] = []

    async def job() -> None:
        VAR.set("job")
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            caught.append(VAR.get())
            raise

    async def run() -> None:
        await InContext(job(), contextvars.copy_context())

    async def main() -> None:
        task = asyncio.ensure_future(run())
        await asyncio.wait_for(started.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)

    asyncio.run(main())
    assert caught == ["job"]


def test_an_error_of_the_coroutine_reaches_the_awaiting_task() -> None:
    async def job() -> None:
        await asyncio.sleep(0)
        raise ValueError("bad")

    async def main() -> None:
        await InContext(job(), contextvars.copy_context())

    with pytest.raises(ValueError, match="bad"):
        asyncio.run(main())
