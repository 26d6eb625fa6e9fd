"""Per-event journals of scale-out members and what they show: lost, duplicated, out of order.

Each member appends ``(wall time, partition, seq)`` per handled event with one O_APPEND
write (the ``lifecycle`` handler), so a SIGKILLed member's events are on record too. Merged
over members in time order, the journal is checked as the fault suite's verifier does:
every produced ``seq`` seen at least once; per key, a record handled for the first time
never follows a later record of its key (going back to a record already seen is a
redelivery after a kill, counted as a duplicate).
"""

from __future__ import annotations

import itertools
import struct
from collections import defaultdict
from dataclasses import dataclass

from bench.workload import key_of

JOURNAL = struct.Struct("<dhq")  # time.time(), partition, seq


@dataclass(frozen=True, slots=True)
class Entry:
    """One handled event."""

    t: float
    partition: int
    seq: int


def read(path: str) -> list[Entry]:
    """A member's entries (a record cut by SIGKILL at the end is dropped)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return []
    whole = len(data) - len(data) % JOURNAL.size
    return [Entry(*JOURNAL.unpack_from(data, i)) for i in range(0, whole, JOURNAL.size)]


def verify(entries: list[Entry], produced: int, keys: int) -> dict[str, int]:
    """Lost, duplicated and out-of-order counts of ``entries`` (all members, any order)."""
    merged = sorted(entries, key=lambda e: e.t)
    seen: set[int] = set()
    last: dict[str, int] = {}
    out_of_order = 0
    for e in merged:
        key = key_of(e.seq, keys)
        if e.seq not in seen and e.seq < last.get(key, -1):
            out_of_order += 1
        seen.add(e.seq)
        last[key] = e.seq
    lost = sum(1 for s in range(produced) if s not in seen)
    return {"lost": lost, "duplicates": len(merged) - len(seen), "out_of_order": out_of_order}


def partition_pauses(entries: list[Entry], start: float, end: float) -> tuple[float, float]:
    """(longest stall of one partition, longest stall of all) that began in [start, end), ms.

    A stall is the time between two consecutive handled events (of one partition, or of
    the merged stream); it is counted for the window its last event before it lies in.
    """
    per: dict[int, list[float]] = defaultdict(list)
    for e in entries:
        per[e.partition].append(e.t)
    return (
        max((_longest(sorted(ts), start, end) for ts in per.values()), default=0.0),
        _longest(sorted(e.t for e in entries), start, end),
    )


def _longest(times: list[float], start: float, end: float) -> float:
    gaps = [b - a for a, b in itertools.pairwise(times) if start <= a < end]
    return max(gaps, default=0.0) * 1000
