"""consumer/gcpolicy: the worker's GC settings hold while it runs and are undone after."""

from __future__ import annotations

import gc

from streamkit.consumer.gcpolicy import YOUNG_THRESHOLD, worker_gc


def test_worker_gc_freezes_and_raises_the_young_threshold_then_restores_both() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with worker_gc():
        assert gc.get_freeze_count() > 0  # start-up's heap is out of every collection
        assert gc.get_threshold() == (max(before[0], YOUNG_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_worker_gc_is_undone_when_the_worker_fails() -> None:
    before = gc.get_threshold()
    try:
        with worker_gc():
            raise RuntimeError("the poll loop failed")
    except RuntimeError:
        pass
    assert (gc.get_threshold(), gc.get_freeze_count()) == (before, 0)
