"""What every contender's handler records, and the result it hands back (stdlib only)."""

from __future__ import annotations

import os
import statistics
import time
from array import array
from typing import Any


class Unavailable(Exception):
    """The contender's library is not installed in this interpreter."""


class Recorder:
    """Counts handled events and times the window from the first to the last one.

    ``hit()`` is on every contender's hot path, so it does as little as possible and
    returns True exactly once: when the target count is reached.
    """

    def __init__(self, spec: dict[str, Any]) -> None:
        self.target = int(spec.get("events", 0))
        self.n = 0
        self.n_end = 0  # events inside the window (those after mark_end() do not count)
        self.t_first = self.t_last = 0.0
        self.cpu_first = self.cpu_last = 0.0
        self._last_seq: dict[str, int] = {}
        self.violations = 0
        self.latencies: list[float] = []
        self.times = array("d")
        self.partitions = array("h")

    def hit(self) -> bool:
        """One event handled; True when it was the target-th."""
        self.n += 1
        if self.n == 1:
            self.t_first, self.cpu_first = time.perf_counter(), time.process_time()
        if self.n == self.target:
            self.mark_end()
            return True
        return False

    def mark_end(self) -> None:
        """Close the measurement window now."""
        self.t_last, self.cpu_last = time.perf_counter(), time.process_time()
        self.n_end = self.n

    def order(self, key: str, seq: int) -> None:
        """Check per-key order: each key's sequence numbers must increase."""
        if seq <= self._last_seq.get(key, -1):
            self.violations += 1
        self._last_seq[key] = seq

    def latency(self, produced_at: float) -> None:
        """Seconds from produce time (in the event) to handler entry."""
        self.latencies.append(time.time() - produced_at)

    def timeline(self, partition: int = -1, produced_at: float = 0.0) -> None:
        """Wall-clock handler entry (shared clock across processes), for scale-out."""
        self.times.append(time.time())
        self.partitions.append(partition)
        if produced_at:
            self.latencies.append(time.time() - produced_at)

    def result(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The child's report to the parent."""
        if not self.t_last:
            self.mark_end()
        n = self.n_end
        elapsed = self.t_last - self.t_first if n else 0.0
        out: dict[str, Any] = {
            "handled": self.n,
            "window_events": n,
            "elapsed_s": elapsed,
            "cpu_s": self.cpu_last - self.cpu_first if n else 0.0,
            "events_per_s": (n - 1) / elapsed if n > 1 and elapsed > 0 else 0.0,
            "order_violations": self.violations,
            "keys_seen": len(self._last_seq),
        }
        if self.latencies:
            out["latency_ms"] = summarise_ms(self.latencies)
        if self.times and spec.get("timeline"):
            _dump(spec["timeline"], self.times, self.partitions)
        return out


def summarise_ms(values: list[float]) -> dict[str, float]:
    """p50/p99/p99.9/max/mean of seconds, in milliseconds."""
    ordered = sorted(values)

    def pct(p: float) -> float:
        return ordered[min(int(p * len(ordered)), len(ordered) - 1)] * 1000

    return {
        "p50": pct(0.50),
        "p99": pct(0.99),
        "p999": pct(0.999),
        "max": ordered[-1] * 1000,
        "mean": statistics.fmean(ordered) * 1000,
        "count": float(len(ordered)),
    }


def _dump(prefix: str, times: array[float], partitions: array[int]) -> None:
    with open(prefix + ".t", "wb") as f:
        times.tofile(f)
    with open(prefix + ".p", "wb") as f:
        partitions.tofile(f)


def touch(path: str | None, text: str = "") -> None:
    """Write a small signal file for the parent (ready, progress)."""
    if path:
        with open(path + ".part", "w") as f:
            f.write(text)
        os.replace(path + ".part", path)
