"""The worker's garbage-collector policy, for as long as it runs (replay uses it too).

The hot path allocates a few container objects per event (job, context, payload, task)
that die within milliseconds, and whatever lives longer (modules, schemas, clients, the
buffer) is traversed again by every collection that reaches its generation:

- start-up's heap is collected once and frozen (``gc.freeze``): no later collection
  traverses it (~2-3 µs of CPU per event in scenario 2 of the benchmark before);
- the youngest generation is collected every :data:`YOUNG_THRESHOLD` allocations instead
  of CPython's 700: short-lived objects are mostly gone by then, so each collection finds
  little to traverse and far fewer run (scenarios 2 and 8: ~15 % of CPU per event).
  Reference cycles wait a little longer to be freed; memory stays bounded the same way.

Both are process-wide, so both are undone when the worker stops (tests, embedding apps).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG_THRESHOLD = 10_000  # allocations between collections of the youngest generation


@contextmanager
def worker_gc() -> Iterator[None]:
    """Freeze start-up's heap and collect the youngest generation less often, until exit."""
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_THRESHOLD), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()  # a process that goes on collects it again
