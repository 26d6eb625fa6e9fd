"""5. Backlog memory: a large backlog, a slow async handler, peak RSS over the run."""

from __future__ import annotations

from bench.context import Bench
from bench.figures import median
from bench.model import Column, Row, ScenarioResult, Target
from bench.proc import Outcome

COLUMNS = [
    Column("backlog", "backlog"),
    Column("handled", "handled"),
    Column("events_per_s", "events/s"),
    Column("peak_rss_mb", "peak RSS MB", ".0f"),
    Column("rss_end_mb", "RSS at end MB", ".0f"),
    Column("cpu_s", "CPU s", ".2f"),
]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    topic = b.data_topic("s5", s.partitions, s.s5_events, s.s5_keys)
    outcomes = [_once(b, topic) for _ in range(b.repeat)]
    ok = [o for o in outcomes if o.ok]
    row = Row("streamkit (defaults, max_inflight 1000)", runs=[_brief(o) for o in outcomes])
    if ok:
        row.figures = {
            "backlog": s.s5_events,
            "handled": median([o.result["handled"] for o in ok]),
            "events_per_s": median([o.result["events_per_s"] for o in ok]),
            "peak_rss_mb": median([o.peak_rss_mb for o in ok]),
            "rss_end_mb": median([o.rss_samples_mb[-1] for o in ok if o.rss_samples_mb]),
            "cpu_s": median([o.result["cpu_s"] for o in ok]),
        }
    else:
        row.note = "; ".join(o.note for o in outcomes)
    result = ScenarioResult("s5", "Backlog memory", COLUMNS, [row])
    result.targets = [
        Target(
            "streamkit peak RSS with the backlog waiting",
            row.figures.get("peak_rss_mb"),
            250,
            higher_is_better=False,
            unit=" MB",
        )
    ]
    result.notes = [
        f"{s.s5_events:,} events waiting on {s.partitions} partitions, {s.s5_keys} keys; "
        f"handler awaits asyncio.sleep({s.s5_sleep}); run for {s.s5_seconds:g} s after the "
        "first event, RSS sampled every 0.25 s; peak = the child's maxrss.",
        "What bounds memory: queued.max.messages.kbytes=16384 (librdkafka prefetch), "
        "max_inflight (1000 events queued or running), max_pending_per_partition.",
    ]
    return result


def _once(b: Bench, topic: str) -> Outcome:
    s = b.sizes
    spec = {"topic": topic, "mode": "backlog", "sleep_s": s.s5_sleep, "duration_s": s.s5_seconds}
    child = b.child("streamkit_worker", spec, tiers=2).start()
    outcome = child.wait(timeout=s.s5_seconds + 90, sample_every=0.25)
    b.cleanup(child)
    return outcome


def _brief(o: Outcome) -> dict[str, object]:
    samples = o.rss_samples_mb
    return {
        "ok": o.ok,
        "note": o.note,
        "peak_rss_mb": o.peak_rss_mb,
        "rss_samples_mb": samples,
        **o.result,
    }
