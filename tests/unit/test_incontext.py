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


def test_the_value_comes_back_and_suspended_says_whether_the_loop_had_a_turn() -> None:
    async def quick() -> int:
        return 1

    async def slow() -> int:
        await asyncio.sleep(0)
        return 2

    async def main() -> list[tuple[int, bool]]:
        out = []
        for coro in (quick(), slow()):
            step = InContext(coro)  # no context: the awaiting task's own
            out.append((await step, step.suspended))
        return out

    assert asyncio.run(main()) == [(1, False), (2, True)]


def test_a_closed_coroutine_runs_its_finally_in_its_own_context() -> None:
    # A task closed unfinished closes the job too; its clean-up (a ContextVar.reset of a
    # token it set) must run in the context it set that token in.
    reset: list[str] = []

    async def job() -> None:
        token = VAR.set("job")
        try:
            await asyncio.sleep(0)  # a bare yield: no loop needed
        finally:
            VAR.reset(token)
            reset.append(VAR.get())

    step = InContext(job(), contextvars.copy_context()).__await__()
    next(step)  # suspended at the wait
    step.close()
    assert reset == ["outer"]
