"""Handler timelines of scale-out members: steady throughput windows and pauses."""

from __future__ import annotations

import bisect
import itertools
import os
from array import array
from dataclasses import dataclass


@dataclass
class Timeline:
    """Wall-clock handler entries of one member, with the partition of each event."""

    times: array[float]
    partitions: array[int]


def load(prefix: str) -> Timeline:
    times, partitions = array("d"), array("h")
    for arr, suffix in ((times, ".t"), (partitions, ".p")):
        path = prefix + suffix
        if os.path.exists(path):
            with open(path, "rb") as f:
                arr.frombytes(f.read())
    return Timeline(times, partitions)


def steady_rate(lines: list[Timeline]) -> tuple[float, float, str]:
    """Events/s while every member was handling, the window length, and a note."""
    active = [t for t in lines if t.times]
    note = (
        f"{len(lines) - len(active)} member(s) handled nothing" if len(active) < len(lines) else ""
    )
    start = max(t.times[0] for t in active)
    end = min(t.times[-1] for t in active)
    if end - start < 0.2:
        first = min(t.times[0] for t in active)
        last = max(t.times[-1] for t in active)
        count = sum(len(t.times) for t in active)
        return (
            count / (last - first),
            last - first,
            "; ".join(x for x in ("no common window: whole run", note) if x),
        )
    count = sum(_between(t.times, start, end) for t in active)
    return count / (end - start), end - start, note


def _between(times: array[float], start: float, end: float) -> int:
    return bisect.bisect_right(times, end) - bisect.bisect_left(times, start)


def max_gap_ms(lines: list[Timeline], since: float) -> float:
    """Longest pause in the merged timeline of all members after ``since``."""
    merged = sorted(t for line in lines for t in line.times if t >= since)
    gaps = [b - a for a, b in itertools.pairwise(merged)]
    return max(gaps, default=0.0) * 1000


def handoff_gaps(old: Timeline, new: Timeline) -> list[float]:
    """Per moved partition: ms from the old owner's last to the new owner's first event."""
    first_new: dict[int, float] = {}
    for t, p in zip(new.times, new.partitions, strict=True):
        first_new.setdefault(p, t)
    gaps = []
    for p, start in first_new.items():
        before = [t for t, q in zip(old.times, old.partitions, strict=True) if q == p and t < start]
        if before:
            gaps.append((start - before[-1]) * 1000)
    return gaps
