"""consumer/flow: backpressure pauses on the buffer bound and on a partition's open span."""

from __future__ import annotations

from typing import Any

from streamkit.consumer.flow import FlowControl
from streamkit.consumer.state import PartitionState
from streamkit.retry.topics import Tier


class Client:
    """Records the pause/resume calls flow control queues (run here at once)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    def pause(self, tps: list[Any]) -> None:
        self.calls.append(("pause", sorted(tp.partition for tp in tps)))

    def resume(self, tps: list[Any]) -> None:
        self.calls.append(("resume", sorted(tp.partition for tp in tps)))


def test_an_event_stuck_in_flight_pauses_fetching_once_its_span_reaches_the_bound() -> None:
    client = Client()
    flow = FlowControl(client, max_buffered=10_000, max_pending=100, later=lambda f, a: f(a))
    stuck, other = (PartitionState("t", p, Tier("t", 0)) for p in (0, 1))
    stuck.tracker.begin(0, 0)  # in flight: nothing behind it may be committed
    stuck.tracker.read_to(98, 0)  # 1-98 taken and done on the spot, held by nothing
    flow.check(buffered=1, states=[stuck, other])
    assert client.calls == [] and not flow.backpressure  # 99 offsets would be read again
    stuck.tracker.read_to(99, 0)
    flow.check(buffered=1, states=[stuck, other])
    assert client.calls == [("pause", [0, 1])] and flow.backpressure
    stuck.tracker.finish(0)
    flow.check(buffered=0, states=[stuck, other])
    assert client.calls[-1] == ("resume", [0, 1]) and not flow.backpressure


def test_a_partition_assigned_paused_under_backpressure_is_resumed_when_it_clears() -> None:
    # The rebalance callback pauses a partition assigned while backpressure is on, on the
    # poll thread, before flow control has seen its state: the resume must reach it too,
    # or it stays paused for good (found by a helper's review; a stall, no error).
    client = Client()
    flow = FlowControl(client, max_buffered=100, max_pending=1_000, later=lambda f, a: f(a))
    old, new = (PartitionState("t", p, Tier("t", 0)) for p in (0, 1))
    flow.check(buffered=100, states=[old])
    assert client.calls == [("pause", [0])] and flow.backpressure
    client.pause([new])  # what RebalanceHandler.on_assign does under backpressure
    flow.check(buffered=10, states=[old, new])  # cleared before any check saw `new`
    assert client.calls[-1] == ("resume", [0, 1]) and not flow.backpressure


def test_nothing_resumes_after_shutdown_paused_everything() -> None:
    # Shutdown pauses every partition; work draining afterwards clears backpressure,
    # and that must not resume fetching for a worker on its way out.
    client = Client()
    flow = FlowControl(client, max_buffered=100, max_pending=1_000, later=lambda f, a: f(a))
    states = [PartitionState("t", p, Tier("t", 0)) for p in (0, 1)]
    flow.check(buffered=100, states=states)
    flow.pause_all(states)
    flow.check(buffered=0, states=states)
    assert [call for call, _ in client.calls] == ["pause", "pause"]
