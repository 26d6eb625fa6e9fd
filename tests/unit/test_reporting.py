"""consumer/reporting: delivery reports are counted in batches, failures at once."""

from __future__ import annotations

import threading

from streamkit.consumer.reporting import WorkerReports
from streamkit.observability.metrics import Metrics


def _sample(reports: WorkerReports, name: str, **labels: str) -> float:
    return reports.metrics.registry.get_sample_value(name, labels) or 0.0


def test_acks_from_the_delivery_thread_are_counted_at_the_next_flush_failures_at_once() -> None:
    reports = WorkerReports(Metrics(), "g")

    def acks() -> None:
        for n in range(1000):
            reports.delivery("ok", 0.001 * (n % 10))

    thread = threading.Thread(target=acks)
    thread.start()
    thread.join(5)
    reports.delivery("failed", 0.5)
    assert _sample(reports, "streamkit_produced_total", outcome="failed") == 1
    assert _sample(reports, "streamkit_produced_total", outcome="ok") == 0  # not flushed yet
    reports.flush_deliveries()
    assert _sample(reports, "streamkit_produced_total", outcome="ok") == 1000
    assert _sample(reports, "streamkit_produce_latency_seconds_count") == 1001
    total = 0.5 + sum(0.001 * (n % 10) for n in range(1000))
    assert abs(_sample(reports, "streamkit_produce_latency_seconds_sum") - total) < 1e-9
    reports.flush_deliveries()  # nothing new: nothing counted twice
    assert _sample(reports, "streamkit_produced_total", outcome="ok") == 1000
