"""6. Replay: ``streamkit replay`` of a DLQ full of dead letters, as an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.context import Bench
from bench.figures import median
from bench.kafka import HEADERS, produce
from bench.model import Column, Row, ScenarioResult, Target
from bench.proc import Child
from streamkit import envelope as env

RAW = "raw loop: consume, produce as is, flush, commit (reference)"
# Replay does per record what the raw loop does not (rewrite headers, route, wait for each
# ack before the ledger note of its batch, then commit): half its rate is the bar. Set when
# the ledger was a record per replayed record; it is one per partition and batch now.
RATIO_GOAL = 0.5
COLUMNS = [
    Column("records", "records"),
    Column("records_per_s", "records/s"),
    Column("records_per_s_x", "x raw", ".2f"),
    Column("us_per_record", "µs/record", ".1f"),
    Column("command_s", "command wall s", ".1f"),
    Column("cpu_total_s", "CPU s", ".2f"),
    Column("peak_rss_mb", "peak RSS MB", ".0f"),
]
CLI = [sys.executable, "-c", "from streamkit.cli import main; main()", "replay"]
TRACEBACK = ("Traceback (most recent call last):\n" + '  File "svc.py", line 1, in h\n' * 30)[:1500]


def replay_available() -> bool:
    return subprocess.run([*CLI, "--help"], capture_output=True, timeout=60).returncode == 0


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    result = ScenarioResult("s6", "Replay of dead letters", COLUMNS)
    result.targets = [
        Target("replay records/s", None, 30_000, unit=" rec/s"),
        Target("replay / raw consume-produce loop (records/s)", None, RATIO_GOAL, unit="x"),
    ]
    if not replay_available():
        note = "not measured: replay not built yet (`streamkit replay --help` fails)"
        result.rows = [Row("streamkit replay", {"records": s.s6_records}, note=note)]
        return result
    runs, raws = [], []
    for _ in range(b.repeat):  # interleaved: both see the same machine state
        runs.append(_once(b))
        raws.append(_raw_once(b))
    row = _row("streamkit replay (defaults)", runs)
    raw = _row(RAW, raws)
    rate, raw_rate = row.figures.get("records_per_s"), raw.figures.get("records_per_s")
    for r in (row, raw):
        if r.figures.get("records_per_s") and raw_rate:
            r.figures["records_per_s_x"] = r.figures["records_per_s"] / raw_rate
    result.rows = [row, raw]
    result.targets[0].value = rate
    result.targets[1].value = rate / raw_rate if rate and raw_rate else None
    result.notes = [
        f"{s.s6_records:,} dead letters (~200-byte value, failure headers with a 1.5 KB "
        "traceback) in `<source>.<group>.dlq`, replayed to the group's retry tier 1 with "
        "`streamkit replay DLQ --json`; records/s from the command's own report (start-up "
        "excluded), wall time of the whole command beside it.",
        "Replay rewrites each record's failure headers into replay headers and, once the "
        "batch's records are acknowledged, writes its ledger note (one record per DLQ "
        "partition and target: a rerun skips what it lists), acknowledged before it "
        "commits. The raw loop copies key, value and headers as they are: consume(500), "
        "produce each, flush, one async commit per batch unless a delivery failed "
        "(reports of failures only); its window is first to last "
        f"record copied. Goal for the ratio: {RATIO_GOAL}x (two publishes against one).",
    ]
    return result


def _row(label: str, runs: list[dict[str, object]]) -> Row:
    ok = [r for r in runs if r.get("records_per_s")]
    row = Row(label, runs=runs)
    if not ok:
        row.note = "; ".join(str(r.get("note")) for r in runs)
        return row
    keys = ("records_per_s", "cpu_total_s", "peak_rss_mb")
    row.figures = {k: median([float(r[k]) for r in ok if r.get(k) is not None]) for k in keys}
    if all(r.get("command_s") for r in ok):
        row.figures["command_s"] = median([float(r["command_s"]) for r in ok])
    row.figures["records"] = ok[0]["records"]
    row.figures["us_per_record"] = 1e6 / row.figures["records_per_s"]
    return row


def _dead_letters(b: Bench) -> tuple[str, str, list[str]]:
    """A fresh DLQ of ``s6_records`` dead letters: (source, group, its tier topics)."""
    s = b.sizes
    source = b.admin.create_topic(b.name("s6src"), s.partitions)
    group = b.name("g")
    topics = b.admin.ensure_tiers(source, group, 2)
    produce(b.bootstrap, topics[-1], s.s6_records, s.keys, headers=_dlq_headers(source, group))
    return source, group, topics


def _raw_once(b: Bench) -> dict[str, object]:
    source, group, topics = _dead_letters(b)
    spec = {"topic": topics[-1], "events": b.sizes.s6_records, "output_topic": topics[0]}
    outcome = b.run("raw_replay", spec, timeout=120 + b.sizes.s6_records / 1000)
    b.admin.forget(group, [*topics, source])
    if not outcome.ok:
        return {"note": outcome.note}
    r = outcome.result
    return {
        "records": r["window_events"],
        "records_per_s": r["events_per_s"],
        "cpu_total_s": outcome.cpu_total_s,
        "peak_rss_mb": outcome.peak_rss_mb,
    }


def _dlq_headers(source: str, group: str) -> list[tuple[str, bytes]]:
    now = str(int(time.time() * 1000)).encode()
    return [
        *HEADERS,
        (env.H_ORIGINAL_TOPIC, source.encode()),
        (env.H_ORIGINAL_PARTITION, b"0"),
        (env.H_ORIGINAL_OFFSET, b"12345"),
        (env.H_ORIGINAL_TIMESTAMP, now),
        (env.H_ATTEMPT, b"3"),
        (env.H_GROUP, group.encode()),
        (env.H_ERROR_TYPE, b"TimeoutError"),
        (env.H_ERROR_MESSAGE, b"downstream timed out after 5s"),
        (env.H_ERROR_TRACEBACK, TRACEBACK.encode()),
        (env.H_FAILED_AT, now),
    ]


def _once(b: Bench) -> dict[str, object]:
    s = b.sizes
    source, _, topics = _dead_letters(b)
    dlq = topics[-1]
    child = _ReplayChild(b, dlq)
    started = time.perf_counter()
    outcome = child.start().wait(timeout=120 + s.s6_records / 1000)
    wall = time.perf_counter() - started
    b.admin.forget(f"streamkit-replay.{dlq}", [*topics, source])
    report = child.report()
    if not outcome.ok or not report.get("rate"):
        return {"note": outcome.note or f"replay reported {report}"}
    return {
        **report,
        "records": report["replayed"],
        "records_per_s": report["rate"],
        "command_s": wall,
        "cpu_total_s": outcome.cpu_total_s,
        "peak_rss_mb": outcome.peak_rss_mb,
    }


class _ReplayChild(Child):
    """``streamkit replay DLQ --json`` measured like any contender (wait4)."""

    def __init__(self, b: Bench, dlq: str) -> None:
        super().__init__(sys.executable, "replay", {"group": dlq}, b.workdir, b.name("replay"))
        self.argv = [*CLI, dlq, "-b", b.bootstrap, "--json"]

    def report(self) -> dict[str, object]:
        """The command's JSON summary: the last JSON document of its output."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        for i in reversed(range(len(lines))):
            if lines[i].startswith("{"):
                try:
                    found = json.loads("\n".join(lines[i:]))
                except ValueError:
                    continue
                if isinstance(found, dict) and "replayed" in found:
                    return found
        return {"error": " | ".join(lines[-3:])}
