import random

from streamkit.consumer.lanes import Lanes
from streamkit.consumer.tracker import OffsetTracker


def test_position_only_moves_over_a_done_prefix() -> None:
    t = OffsetTracker()
    assert t.position == -1
    for offset in (10, 11, 12, 13):
        t.begin(offset, offset * 100)
    assert t.position == 10
    t.finish(12)
    t.finish(11)
    assert t.position == 10  # 10 still in flight: nothing past it may be committed
    assert t.oldest_pending_timestamp() == 1000
    t.finish(10)
    assert t.position == 13
    t.finish(13)
    assert t.position == 14
    assert t.pending == 0


def test_records_done_on_the_spot_behind_one_in_flight_wait_for_it_and_hold_nothing() -> None:
    t = OffsetTracker()
    t.read_to(5, 50)  # a batch's records up to 5 taken, all done on the spot
    assert (t.position, t.last_timestamp) == (6, 50)
    t.begin(6, 1)
    t.read_to(999, 60)  # the next batch: 6 in flight, 7-999 done on the spot
    assert t.position == 6  # 6 still in flight: nothing past it may be committed
    assert (t.pending, t.span) == (1, 994)  # one held; a restart would read 994 again
    t.begin(1000, 2)
    t.finish(1000)  # out of order: waits behind 6 too
    assert t.position == 6
    t.finish(6)
    assert (t.position, t.pending, t.span) == (1001, 0, 0)


def test_random_completion_order_never_overtakes_an_unfinished_offset() -> None:
    rng = random.Random(3)
    t = OffsetTracker()
    offsets = list(range(1000))
    for o in offsets:
        t.begin(o, 0)
    rng.shuffle(offsets)
    done: set[int] = set()
    for o in offsets:
        t.finish(o)
        done.add(o)
        lowest_unfinished = min(set(range(1000)) - done, default=1000)
        assert t.position == lowest_unfinished
    assert t.needs_commit()
    t.committed = t.position
    assert not t.needs_commit()


def test_lanes_serialise_per_lane_and_run_others_at_once() -> None:
    started: list[str] = []
    lanes: Lanes[str] = Lanes(started.append)
    lanes.submit("a", "a1")
    lanes.submit("a", "a2")
    lanes.submit("b", "b1")
    lanes.submit(None, "n1")
    assert started == ["a1", "b1", "n1"]
    lanes.release("a")
    assert started[-1] == "a2"
    lanes.release("a")
    lanes.release("b")
    assert len(lanes) == 0


def test_a_lane_of_thousands_of_jobs_released_at_once_does_not_recurse() -> None:
    # A revoked partition's queued jobs release their lane as soon as they start: 10,000
    # of them used to recurse release -> start -> release ... past the stack limit.
    from streamkit.consumer.lanes import Lanes

    started: list[int] = []

    def start(job: int) -> None:
        started.append(job)
        if job >= 0:
            lanes.release("lane")  # abandoned at once, like a job of a revoked partition

    lanes: Lanes[int] = Lanes(start)
    lanes.submit("lane", -1)  # runs now and keeps the lane busy
    started.clear()
    for job in range(10_000):
        lanes.submit("lane", job)
    lanes.release("lane")  # the first job finishes: every queued one starts and ends
    assert started == list(range(10_000))
    assert len(lanes) == 0
