"""Per-batch aggregation of metric updates.

A prometheus-client increment takes a lock; doing several per event would cost more than a
trivial handler. The dispatcher counts into plain dicts and :meth:`BatchStats.flush` applies
the sums once per poll loop iteration.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from contextvars import ContextVar
from typing import Any

from streamkit.observability.metrics import HANDLER_DURATION_BUCKETS, Metrics

# The trace id of the handler call whose duration is recorded next in this context; set by
# the tracing middleware (observability/tracing.py), None without tracing.
EXEMPLAR_TRACE_ID: ContextVar[str | None] = ContextVar("streamkit_exemplar_trace", default=None)


class BatchStats:
    """Counts and durations gathered between two flushes."""

    __slots__ = (
        "_counts",
        "_decode",
        "_dependency_waits",
        "_durations",
        "_exemplars",
        "_failures",
        "_group",
        "_metrics",
        "_publish",
        "ok_times",
    )

    def __init__(self, metrics: Metrics, group: str) -> None:
        self._metrics = metrics
        self._group = group
        self._counts: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._durations: defaultdict[str, list[float]] = defaultdict(list)
        # Events done ok with no exemplar to record: (topic, event type) -> their handler
        # durations; the count is the list's length (one table touched per event, not
        # two, and no call). The dispatcher's hot path, where no middleware runs (so no
        # exemplar: only the tracing middleware sets one), appends here itself.
        self.ok_times: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
        # One traced duration per (event type, bucket) and flush: exemplars for the panel.
        self._exemplars: dict[tuple[str, int], tuple[float, str]] = {}
        self._failures: defaultdict[tuple[str, str, str], int] = defaultdict(int)
        self._decode: defaultdict[str, int] = defaultdict(int)
        self._publish: defaultdict[str, int] = defaultdict(int)
        self._dependency_waits: defaultdict[str, int] = defaultdict(int)

    def count(self, topic: str, event_type: str, outcome: str) -> None:
        """One event finished with ``outcome``."""
        self._counts[(topic, event_type, outcome)] += 1

    def duration(self, event_type: str, seconds: float) -> None:
        """One handler run took ``seconds``."""
        trace_id = EXEMPLAR_TRACE_ID.get()
        if trace_id is None:
            self._durations[event_type].append(seconds)
            return
        bucket = bisect_left(HANDLER_DURATION_BUCKETS, seconds)
        previous = self._exemplars.get((event_type, bucket))
        if previous is not None:  # the bucket keeps the latest trace; the count is exact
            self._durations[event_type].append(previous[0])
        self._exemplars[(event_type, bucket)] = (seconds, trace_id)

    def failure(self, kind: str, event_type: str, error_type: str) -> None:
        """One event went to a retry tier (``kind`` retry) or the DLQ."""
        self._failures[(kind, event_type, error_type)] += 1

    def decode_error(self, topic: str) -> None:
        """One record could not be decoded or routed."""
        self._decode[topic] += 1

    def publish_failed(self, kind: str) -> None:
        """A retry/DLQ publish failed (loud: the offset stays uncommitted)."""
        self._publish[kind] += 1

    def value_dropped(self) -> None:
        """A dead letter went out without its value (too large even shrunk): loud, rare."""
        self._metrics.child(self._metrics.values_dropped, self._group).inc()

    def dependency_wait(self, dependency: str, held: int, count: bool = True) -> None:
        """``held`` events wait on ``dependency`` now (a gauge: set at once, it is rare);
        ``count``: one more event began waiting."""
        m = self._metrics
        m.child(m.waiting_on_dependency, self._group, dependency).set(held)
        if count:
            self._dependency_waits[dependency] += 1

    def flush(self) -> None:
        """Apply everything gathered since the last flush to the metrics."""
        m, group = self._metrics, self._group
        for (topic, event_type), values in self.ok_times.items():
            self._counts[(topic, event_type, "ok")] += len(values)
            self._durations[event_type].extend(values)
        for (topic, event_type, outcome), n in self._counts.items():
            m.child(m.events, group, topic, event_type, outcome).inc(n)
        for event_type, values in self._durations.items():
            observe_many(m.handler_duration_child(event_type), values)
        for (event_type, _), (seconds, trace_id) in self._exemplars.items():
            m.handler_duration_child(event_type).observe(seconds, {"trace_id": trace_id})
        for (kind, event_type, etype), n in self._failures.items():
            if kind == "retry":
                m.child(m.retries, group, event_type).inc(n)
            else:
                m.child(m.dead_letters, group, etype).inc(n)
        for topic, n in self._decode.items():
            m.child(m.decode_errors, group, topic).inc(n)
        for kind, n in self._publish.items():
            m.child(m.publish_failures, group, kind).inc(n)
        for dependency, n in self._dependency_waits.items():
            m.child(m.dependency_waits, group, dependency).inc(n)
        self._clear()

    def _clear(self) -> None:
        for table in (self._counts, self._durations, self.ok_times, self._failures, self._decode):
            table.clear()
        self._dependency_waits.clear()
        self._publish.clear()
        self._exemplars.clear()


def observe_many(histogram: Any, values: list[float]) -> None:
    """``observe`` every value, taking each bucket's lock once per batch, not per value.

    Uses prometheus-client's bucket internals (stable since 0.4); falls back to plain
    ``observe`` if they ever change.
    """
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None:
        for value in values:
            histogram.observe(value)
        return
    # Sorted once (in C), each bucket's count is two bisections of the batch: no Python
    # step per value (a bisect per value cost ~0.1 us per event in scenario 1).
    ordered = sorted(values)
    below = 0
    for index, bound in enumerate(bounds):
        upto = bisect_right(ordered, bound)  # a value equal to a bound is in its bucket
        if upto > below:
            buckets[index].inc(upto - below)
            below = upto
    total.inc(sum(values))
