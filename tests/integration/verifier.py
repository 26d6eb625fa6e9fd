"""The crash verifier shared by the exactly-once and inbox tests: SIGKILL a service at
random points of a backlog, restart it each time, then drain to the end."""

from __future__ import annotations

import random
import signal
from collections.abc import Callable
from pathlib import Path

from tests.integration.helpers import Service, committed, end_offsets, wait_until


def handled_lines(path: Path) -> int:
    """How many events a service recorded as handled (one line each) in ``path``."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def kill_then_drain(
    start: Callable[[], Service],
    handled: Callable[[], int],
    *,
    events: int,
    kills: int,
    seed: str,
    bootstrap: str,
    group: str,
    topic: str,
    partitions: int,
) -> None:
    """Start, SIGKILL once ``handled()`` passes each of ``kills`` random thresholds, then
    run a last service until every offset of ``topic`` is committed and stop it (exit 0)."""
    margin = max(events // 10, 1)
    thresholds = sorted(random.Random(seed).sample(range(margin // 2, events - margin), kills))
    for threshold in thresholds:
        service = start()
        wait_until(lambda t=threshold: handled() >= t, 120, f"{threshold} handled")
        service.signal(signal.SIGKILL)
        service.wait(30)
    final = start()
    ends = end_offsets(bootstrap, topic, partitions)
    wait_until(lambda: committed(bootstrap, group, topic, partitions) == ends, 180, "all committed")
    assert final.stop() == 0
