"""A rebalance callback fired by a poll on the loop thread (PollThread.inline)."""

from __future__ import annotations

import asyncio

import pytest

from streamkit.consumer.pollthread import PollThread
from streamkit.consumer.state import Load, PartitionState, drain
from streamkit.retry.topics import Tier


def _state() -> PartitionState:
    return PartitionState("orders", 0, Tier("orders", 0), Load())


async def _revoke_work(state: PartitionState) -> str:
    await drain([state], 5.0)  # waits while a failure record's ack is pending
    return "drained"


def test_a_callback_inline_settles_pending_acks_first_then_runs_to_the_end() -> None:
    async def main() -> None:
        poll = PollThread(asyncio.get_running_loop())
        state = _state()
        state.ack_started()  # a retry record awaits its ack
        seen: list[float] = []

        def settle(timeout: float) -> None:  # the worker flushes and runs the callbacks
            seen.append(timeout)
            state.ack_ended()

        with poll.inline(settle):
            assert poll.on_loop(_revoke_work(state), timeout=7.0) == "drained"
        assert seen == [7.0]
        poll.shutdown()

    asyncio.run(main())


def test_without_settling_a_callback_inline_that_must_wait_fails_loudly() -> None:
    async def main() -> None:
        poll = PollThread(asyncio.get_running_loop())
        state = _state()
        state.ack_started()
        with poll.inline(), pytest.raises(RuntimeError, match="needed to wait"):
            poll.on_loop(_revoke_work(state), timeout=1.0)
        state.ack_ended()
        poll.shutdown()

    asyncio.run(main())


def test_the_settle_hook_ends_with_the_inline_poll() -> None:
    async def main() -> None:
        poll = PollThread(asyncio.get_running_loop())
        calls: list[float] = []
        with poll.inline(calls.append):
            pass
        # A callback from the poll thread later must not run the hook of a finished poll.
        assert await asyncio.to_thread(poll.on_loop, asyncio.sleep(0, "ran"), 5.0) == "ran"
        assert calls == []
        poll.shutdown()

    asyncio.run(main())
