"""consumer/handoff: calls from other threads run on the loop, in order, one wake-up a burst."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from streamkit.consumer.handoff import Handoff
from streamkit.delivery import Delivery, DeliveryResult
from streamkit.errors import DeliveryFailedError

OK = DeliveryResult("t", 0, 1, 0.0)


def test_a_burst_from_another_thread_runs_in_order_on_the_loop_with_few_wake_ups() -> None:
    async def main() -> tuple[list[int], set[int], int]:
        loop = asyncio.get_running_loop()
        drains = 0
        wake = loop.call_soon_threadsafe

        def counted(*args: Any) -> Any:  # each call writes to the loop's self-pipe
            nonlocal drains
            drains += 1
            return wake(*args)

        loop.call_soon_threadsafe = counted  # type: ignore[method-assign]
        handoff = Handoff(loop)
        seen: list[int] = []
        threads: set[int] = set()
        done = asyncio.Event()

        def record(n: int) -> None:
            seen.append(n)
            threads.add(threading.get_ident())
            if n == 999:
                done.set()

        def burst() -> None:
            for n in range(1000):
                handoff.call(record, n)

        thread = threading.Thread(target=burst)
        thread.start()
        await asyncio.wait_for(done.wait(), 5)
        thread.join(5)
        return seen, threads, drains

    seen, threads, drains = asyncio.run(main())
    assert seen == list(range(1000))
    assert threads == {threading.main_thread().ident}  # the loop's thread, not the caller's
    assert drains < 1000  # one per burst: the loop was not woken per call


def test_a_failing_callback_is_reported_and_the_rest_still_run() -> None:
    async def main() -> tuple[list[str], list[str]]:
        loop = asyncio.get_running_loop()
        reported: list[str] = []
        loop.set_exception_handler(lambda _, context: reported.append(context["message"]))
        handoff = Handoff(loop)
        seen: list[str] = []

        def boom() -> None:
            raise RuntimeError("bug")

        handoff.call(boom)
        handoff.call(seen.append, "after")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return seen, reported

    seen, reported = asyncio.run(main())
    assert seen == ["after"]
    assert reported == ["handoff callback"]


def test_acked_waits_for_each_delivery_and_raises_the_first_error() -> None:
    async def main() -> None:
        handoff = Handoff(asyncio.get_running_loop())
        first, second = Delivery(), Delivery()
        waiting = asyncio.ensure_future(handoff.acked([first, second]))
        await asyncio.sleep(0)
        threading.Thread(target=first._settle, args=(OK, None)).start()
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the second is still in flight
        failed = DeliveryFailedError("nope")
        threading.Thread(target=second._settle, args=(None, failed)).start()
        with pytest.raises(DeliveryFailedError):
            await asyncio.wait_for(waiting, 5)
        await handoff.acked([Delivery.completed(OK)])  # settled already: no wait

    asyncio.run(main())


def test_when_settled_calls_back_once_on_the_loop_with_the_first_error() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        handoff = Handoff(loop)
        # Two deliveries that report to the hand-off (a worker's producer), one that does not.
        watched = [Delivery(sink=handoff.settled), Delivery(sink=handoff.settled)]
        plain = Delivery()
        calls: list[tuple[BaseException | None, bool]] = []
        done = asyncio.Event()

        def finished(error: BaseException | None) -> None:
            calls.append((error, threading.get_ident() == threading.main_thread().ident))
            done.set()

        handoff.when_settled([*watched, plain], finished)
        failed = DeliveryFailedError("nope")
        for delivery, error in ((plain, None), (watched[1], failed), (watched[0], None)):
            thread = threading.Thread(target=delivery._settle, args=(None if error else OK, error))
            thread.start()
            thread.join(5)
            await asyncio.sleep(0.01)
            assert len(calls) == int(delivery is watched[0]), "called before the last one"
        await asyncio.wait_for(done.wait(), 5)
        await asyncio.sleep(0.01)
        assert calls == [(failed, True)]  # once, on the loop's thread, the failure in list order
        settled_now: list[BaseException | None] = []
        handoff.when_settled([Delivery.completed(OK)], settled_now.append)
        assert settled_now == [None]  # all settled already: at once

    asyncio.run(main())


def test_two_waits_on_one_watched_delivery_are_both_told() -> None:
    async def main() -> None:
        handoff = Handoff(asyncio.get_running_loop())
        delivery = Delivery(sink=handoff.settled)
        seen: list[str] = []
        handoff.when_settled([delivery], lambda error: seen.append("first"))
        waiting = asyncio.ensure_future(handoff.acked([delivery]))  # the second watcher
        await asyncio.sleep(0)
        threading.Thread(target=delivery._settle, args=(OK, None)).start()
        await asyncio.wait_for(waiting, 5)
        await asyncio.sleep(0.01)
        assert seen == ["first"]

    asyncio.run(main())


@pytest.mark.parametrize("watched", [True, False], ids=["with-sink", "done-callback"])
def test_when_settled_with_one_delivery_tells_its_error_once_on_the_loop(watched: bool) -> None:
    async def main() -> None:
        handoff = Handoff(asyncio.get_running_loop())
        delivery = Delivery(sink=handoff.settled) if watched else Delivery()
        calls: list[tuple[BaseException | None, bool]] = []
        told = asyncio.Event()

        def finished(error: BaseException | None) -> None:
            calls.append((error, threading.get_ident() == threading.main_thread().ident))
            told.set()

        handoff.when_settled([delivery], finished)
        assert calls == []  # pending: nothing yet
        failed = DeliveryFailedError("nope")
        thread = threading.Thread(target=delivery._settle, args=(None, failed))
        thread.start()
        thread.join(5)
        await asyncio.wait_for(told.wait(), 5)
        await asyncio.sleep(0.01)
        assert calls == [(failed, True)]

    asyncio.run(main())
