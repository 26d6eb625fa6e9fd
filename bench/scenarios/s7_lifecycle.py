"""Scenario 7, a group's life under steady load: 1 -> 2 -> 4 members join, one leaves
(SIGTERM), one is SIGKILLed and replaced at once (as Kubernetes restarts a pod).

Per step, the longest pause of one partition and of the whole stream, per membership mode:
classic ``range`` (the default), KIP-848 (``--group-protocol consumer``, the broker's
``range``), and static members (``--instance-id``, classic). Every event is journalled
(bench.journal), so the run also says what was lost, repeated or out of key order.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

from bench import journal
from bench.context import Bench
from bench.kafka import produce_paced
from bench.model import Row
from bench.proc import wait_for_file
from bench.scenarios.s7_group import Group

CONSUMER = {"group_protocol": "consumer"}
# A broker tuned for KIP-848: 1 s heartbeats for this group (needs the broker's
# group.consumer.min.heartbeat.interval.ms <= 1000; scripts/kafka-local sets it).
FAST_HEARTBEAT = {"consumer.heartbeat.interval.ms": "1000"}
MODES: dict[str, tuple[str, dict[str, Any], bool, dict[str, str]]] = {
    "classic": ("classic range (default)", {}, False, {}),
    "kip848": ("KIP-848 (--group-protocol consumer)", CONSUMER, False, {}),
    "kip848_1s": ("KIP-848, broker heartbeat 1 s (group config)", CONSUMER, False, FAST_HEARTBEAT),
    "static": ("static (--instance-id), classic range", {}, True, {}),
}
STEPS = ("join_2", "join_4", "leave", "kill")
MARGIN = 0.25  # s before a step that still counts as its own (the kill stops events at once)


def lifecycle_rows(b: Bench) -> list[Row]:
    """One row per mode named in ``s7_lifecycle`` (sizes)."""
    rows = []
    for key in b.sizes.s7_lifecycle:
        label, settings, static, group_config = MODES[key]
        figures = _run(b, settings, static, group_config)
        note = str(figures.pop("note", ""))
        rows.append(Row(f"life: {label}", figures=figures, note=note, runs=[dict(figures)]))
    return rows


def _run(
    b: Bench, settings: dict[str, Any], static: bool, group_config: dict[str, str]
) -> dict[str, Any]:
    s = b.sizes
    topic = b.admin.create_topic(b.name("s7life"), s.s7_partitions)
    group = Group(b, topic, "lifecycle", settings, static=static, group_config=group_config)
    first = group.add()
    if not wait_for_file(first.spec["ready"], 90, [first]):
        group.stop()
        return {"note": "the first member never got partitions"}
    phase = s.s7_phase_seconds
    sent: list[int] = []
    args = (b.bootstrap, topic, s.s7_join_rate, phase * (len(STEPS) + 1), s.keys)
    producer = threading.Thread(target=lambda: sent.append(produce_paced(*args)))
    producer.start()
    # Pauses are looked for while events arrive: once they stop, the last healthy partition's
    # final event and a killed member's redelivery 45 s later are no pause of the stream.
    stream_end = time.time() + phase * (len(STEPS) + 1) - 1
    marks = _steps(group, phase)
    producer.join()
    figures = _settle(group, sent[0], s.keys, timeout=120)
    group.stop()
    b.admin.delete_topics([topic])
    entries = [e for m in group.members for e in journal.read(m.spec["journal"])]
    for i, step in enumerate(STEPS):
        end = marks[i + 1] - MARGIN if i + 1 < len(marks) else stream_end
        one, all_ = journal.partition_pauses(entries, marks[i] - MARGIN, end)
        figures[f"{step}_ms"], figures[f"{step}_all_ms"] = one, all_
    figures["rates"] = _rates(entries, marks)
    return figures


def _steps(group: Group, phase: float) -> list[float]:
    """Join, join two, SIGTERM one, SIGKILL one and start its replacement; the step times."""
    marks = []
    time.sleep(phase)
    marks.append(time.time())
    group.add()
    time.sleep(phase)
    marks.append(time.time())
    group.add()
    group.add()
    time.sleep(phase)
    marks.append(time.time())
    group.members[3].terminate()
    time.sleep(phase)
    marks.append(time.time())
    group.members[2].kill()
    group.add(slot=2)  # the replacement (same instance id when static)
    return marks


def _settle(group: Group, produced: int, keys: int, timeout: float) -> dict[str, Any]:
    """Wait until every produced event was handled (a killed member's session may hold
    its partitions); then the verifier's counts."""
    deadline = time.monotonic() + timeout
    while True:
        entries = [e for m in group.members for e in journal.read(m.spec["journal"])]
        counts = journal.verify(entries, produced, keys)
        if counts["lost"] == 0 or time.monotonic() > deadline:
            return {**counts, "produced": produced}
        time.sleep(0.5)


def _rates(entries: list[journal.Entry], marks: list[float]) -> str:
    """Events/s handled between steps, for 1 / 2 / 4 / 3 members (paced: the offered rate
    unless the group falls behind)."""
    times = sorted(e.t for e in entries)
    bounds = [times[0], *marks]
    out = []
    for a, b in itertools.pairwise(bounds):
        n = sum(1 for t in times if a + 1 <= t < b)  # 1 s after a step: past its pause
        out.append(f"{n / max(b - a - 1, 0.1):,.0f}")
    return " / ".join(out)
