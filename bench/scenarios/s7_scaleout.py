"""7. Scale-out: 1, 2, 4 streamkit processes in one group, per membership mode; a group's
life under load (joins, a leave, a kill: bench.scenarios.s7_lifecycle)."""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.context import Bench
from bench.figures import median
from bench.kafka import produce_paced
from bench.model import Column, Row, ScenarioResult
from bench.proc import Outcome, wait_for_file
from bench.scenarios.s7_group import Group
from bench.scenarios.s7_lifecycle import lifecycle_rows
from bench.timeline import Timeline, handoff_gaps, max_gap_ms, steady_rate

COLUMNS = [
    Column("events_per_s", "events/s, all members"),
    Column("events_per_s_x", "x 1 member", ".2f"),
    Column("overall_per_s", "events/s incl. joins"),
    Column("window_s", "window s", ".1f"),
    Column("split", "events per member"),
    Column("cpu_total_s", "CPU s (all)", ".1f"),
    Column("peak_rss_mb", "max RSS MB", ".0f"),
    Column("join_gap_ms", "group pause ms", ".0f"),
    Column("handoff_ms", "moved-partition pause ms", ".0f"),
    Column("moved", "source partitions moved"),
    Column("join_latency_ms", "max latency ms", ".0f"),
    Column("rates", "handled/s between steps: 1 / 2 / 4 / 3 members"),
    Column("join_2_ms", "join 1->2 pause ms (partition / all)", ".0f"),
    Column("join_2_all_ms", "", ".0f"),
    Column("join_4_ms", "join 2->4 pause ms", ".0f"),
    Column("join_4_all_ms", "", ".0f"),
    Column("leave_ms", "leave (SIGTERM) pause ms", ".0f"),
    Column("leave_all_ms", "", ".0f"),
    Column("kill_ms", "kill + restart pause ms", ".0f"),
    Column("kill_all_ms", "", ".0f"),
    Column("lost", "lost"),
    Column("duplicates", "repeated"),
    Column("out_of_order", "out of key order"),
]


# Capacity rows beyond the default (classic range): label suffix, settings, static ids.
CAPACITY_MODES: dict[str, tuple[str, dict[str, Any], bool]] = {
    "kip848": (", --group-protocol consumer", {"group_protocol": "consumer"}, False),
    "static": (", --instance-id", {}, True),
}


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    topic = b.data_topic("s7", s.s7_partitions, s.s7_events, s.keys)
    rows = [_members_row(b, topic, k, {}) for k in s.s7_members]
    for mode in s.s7_modes:
        if mode in CAPACITY_MODES:
            suffix, settings, static = CAPACITY_MODES[mode]
            rows += [
                _members_row(b, topic, k, settings, suffix, static) for k in s.s7_members if k > 1
            ]
    base = rows[0].figures.get("events_per_s") if rows else None
    for r in rows:
        value = r.figures.get("events_per_s")
        if value and base:
            r.figures["events_per_s_x"] = value / base
    rows.append(_join_row(b, "join: 2nd member joins under steady load (defaults)", {}))
    rows += lifecycle_rows(b)
    result = ScenarioResult("s7", "Scale-out", COLUMNS, rows)
    result.notes = _notes(b)
    return result


def _members_row(
    b: Bench, topic: str, k: int, settings: dict[str, Any], suffix: str = "", static: bool = False
) -> Row:
    runs = [_members_run(b, topic, k, settings, static) for _ in range(b.repeat)]
    ok = [r for r in runs if r.get("events_per_s")]
    label = f"{k} member{'s' if k > 1 else ''}{suffix}"
    row = Row(label, runs=runs)
    if not ok:
        row.note = "; ".join(str(r.get("note", "")) for r in runs)
        return row
    keys = ("events_per_s", "overall_per_s", "window_s", "cpu_total_s", "peak_rss_mb")
    row.figures = {key: median([r[key] for r in ok]) for key in keys}
    row.figures["split"] = " / ".join(f"{n:,}" for n in ok[0]["per_member"])
    row.note = "; ".join(sorted({str(r["note"]) for r in ok if r.get("note")}))
    return row


def _members_run(
    b: Bench, topic: str, k: int, settings: dict[str, Any], static: bool
) -> dict[str, Any]:
    group = Group(b, topic, "timeline", settings, static=static)
    for _ in range(k):
        group.add()
    finished = group.wait_handled(b.sizes.s7_events, timeout=120 + b.sizes.s7_events / 2000)
    outcomes = group.stop()
    if not finished or not all(o.ok for o in outcomes):
        return {"note": "; ".join(o.note for o in outcomes if o.note) or "did not finish"}
    rate, window, note = steady_rate(group.timelines())
    lines = group.timelines()
    first = min(t.times[0] for t in lines if t.times)
    last = max(t.times[-1] for t in lines if t.times)
    return {
        "events_per_s": rate,
        "window_s": window,
        "overall_per_s": sum(len(t.times) for t in lines) / (last - first),
        "cpu_total_s": sum(o.cpu_total_s for o in outcomes),
        "peak_rss_mb": max(o.peak_rss_mb for o in outcomes),
        "per_member": [len(t.times) for t in lines],
        "note": note,
    }


def _join_row(b: Bench, label: str, settings: dict[str, Any]) -> Row:
    runs = [_join_run(b, settings) for _ in range(b.repeat)]
    ok = [r for r in runs if "join_gap_ms" in r]
    row = Row(label, runs=runs)
    if not ok:
        row.note = "; ".join(str(r.get("note", "")) for r in runs)
        return row
    keys = ("join_gap_ms", "handoff_ms", "join_latency_ms", "moved")
    row.figures = {key: median([r[key] for r in ok]) for key in keys}
    return row


def _join_run(b: Bench, settings: dict[str, Any]) -> dict[str, Any]:
    s = b.sizes
    topic = b.admin.create_topic(b.name("s7join"), s.s7_partitions)
    group = Group(b, topic, "join", settings)
    first = group.add()
    if not wait_for_file(first.spec["ready"], 60, [first]):
        group.stop()
        return {"note": "first member never got partitions"}
    total = int(s.s7_join_rate * s.s7_join_seconds)
    args = (b.bootstrap, topic, s.s7_join_rate, s.s7_join_seconds, s.keys)
    producer = threading.Thread(target=produce_paced, args=args)
    producer.start()
    time.sleep(s.s7_join_seconds * 0.3)
    launched = time.time()
    group.add()
    producer.join()
    group.wait_handled(total, timeout=60)
    outcomes = group.stop()
    b.admin.delete_topics([topic])
    return _join_figures(group.timelines(), outcomes, launched)


def _join_figures(
    lines: list[Timeline], outcomes: list[Outcome], launched: float
) -> dict[str, Any]:
    if len(lines) < 2 or not lines[1].times:
        return {"note": "the second member handled nothing (joined after the stream ended?)"}
    gaps = handoff_gaps(lines[0], lines[1])
    latency = [o.result.get("latency_ms", {}).get("max", 0.0) for o in outcomes if o.ok]
    return {
        "join_gap_ms": max_gap_ms(lines, since=launched),
        "handoff_ms": max(gaps) if gaps else 0.0,
        "handoff_all_ms": gaps,
        "moved": len(set(lines[1].partitions)),
        "join_latency_ms": max(latency, default=0.0),
        "joined_after_s": lines[1].times[0] - launched,
    }


def _notes(b: Bench) -> list[str]:
    s = b.sizes
    return [
        f"{s.s7_events:,} events pre-produced on {s.s7_partitions} partitions; members "
        f"({', '.join(map(str, s.s7_members))}) start together in one group "
        "(streamkit's default assignor, range). "
        "'events/s, all members' counts only the window in which every member was handling "
        "(from the last member's first event to the first member's last event); "
        "'incl. joins' is all events over first-to-last.",
        f"Join: member 1 handles a steady {s.s7_join_rate:,} events/s; member 2 starts "
        f"{s.s7_join_seconds * 0.3:g} s into the stream. Group pause = the longest gap in "
        "the merged handler timeline after member 2 was launched; moved-partition pause = "
        "the longest time between member 1's last and member 2's first event on a partition "
        "that moved (includes the normal gap between two events of one partition, "
        f"~{1000 * s.s7_partitions / s.s7_join_rate:.1f} ms); max latency = produce to handler "
        "entry over the whole run.",
        "streamkit defaults to range (per-topic balance, eager rebalance); cooperative-sticky "
        "balances partition counts over all subscribed topics, retry tiers included, and "
        "let a joining member take every source partition. 'events per member' and 'source "
        "partitions moved' show how the source topic was actually split.",
        "2 cores host the broker and every member: more members than cores cannot add "
        "throughput here; the figures show the cost of coordination, not the scaling limit.",
        "'--group-protocol consumer' rows: KIP-848, the broker's range assignor; '--instance-id' "
        "rows: static members (classic range), each with its own id.",
        f"life: a steady {s.s7_join_rate:,} events/s for {s.s7_phase_seconds * 5:g} s; every "
        f"{s.s7_phase_seconds:g} s one step: member 2 joins, members 3 and 4 join, member 4 "
        "leaves (SIGTERM), member 3 is SIGKILLed and a replacement started at once (static: "
        "same instance id). Pause = the longest time between two handled events of one "
        "partition (/ of the whole stream) that began during the step; librdkafka's and the "
        "broker's default session timeouts (45 s). lost / repeated / out of key order: every "
        "event journalled by every member (O_APPEND, survives SIGKILL), merged in time order "
        "and checked as the fault suite's verifier does (repeats come only from the kill). "
        "'handled/s between steps' (from 1 s after a step to the next) shows the group keeping "
        "up with the offered rate, and its catch-up after a pause; capacity per member count "
        "is in the 'N members' rows.",
    ]
