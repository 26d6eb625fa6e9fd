"""11. Idempotent handlers: in-memory dedupe vs none; the PostgreSQL inbox vs a raw loop."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

from bench.context import Bench
from bench.figures import THROUGHPUT_COLUMNS, figure, row
from bench.model import Column, ScenarioResult, Target
from bench.proc import Outcome

ASYNC, ASYNC_DEDUPE = "async handler, no dedupe", "async handler, Dedupe(MemoryStore())"
SYNC, SYNC_NOOP = "sync handler, no dedupe", "sync handler, a pass-through middleware"
SYNC_DEDUPE = "sync handler, Dedupe(MemoryStore())"
INBOX = "Dedupe(PostgresInbox), one INSERT per event"
RAW_PG = "raw loop, same SQL: one transaction per event (reference)"
# (label, handler mode, dedupe, reference label for the ratio)
MEMORY_ROWS: list[tuple[str, str, str | None, str | None]] = [
    (ASYNC, "async", None, None),
    (ASYNC_DEDUPE, "async", "memory", ASYNC),
    (SYNC, "sync", None, None),
    (SYNC_NOOP, "sync", "noop", SYNC),
    (SYNC_DEDUPE, "sync", "memory", SYNC),
]
COLUMNS = [c for c in THROUGHPUT_COLUMNS if not c.key.endswith("_x")] + [
    Column("ratio", "x reference", ".2f")
]
POOL = 10
ROOT = Path(__file__).resolve().parents[2]


def run(b: Bench) -> ScenarioResult:
    s = b.sizes
    outcomes: dict[str, list[Outcome]] = {label: [] for label, *_ in MEMORY_ROWS}
    outcomes |= {INBOX: [], RAW_PG: []}
    topic = b.data_topic("s11", s.partitions, s.s11_events, s.keys)
    pg_topic = b.data_topic("s11pg", s.partitions, s.s11_pg_events, s.keys)
    dsn = _postgres()
    for _ in range(b.repeat):
        for label, mode, dedupe, _ref in MEMORY_ROWS:
            spec = {"topic": topic, "events": s.s11_events, "mode": mode, "dedupe": dedupe}
            timeout = 60 + s.s11_events / 1000
            outcomes[label].append(b.run("streamkit_worker", spec, timeout=timeout, tiers=2))
        if dsn is not None:
            _inbox_runs(b, dsn, pg_topic, outcomes)
    rows = [row(label, runs) for label, runs in outcomes.items() if runs]
    _ratios(rows)
    result = ScenarioResult("s11", "Idempotent handlers", COLUMNS, rows)
    result.targets = _targets(rows)
    result.notes = _notes(b, dsn)
    return result


def _inbox_runs(b: Bench, dsn: str, topic: str, outcomes: dict[str, list[Outcome]]) -> None:
    events = b.sizes.s11_pg_events
    for label, contender in ((INBOX, "streamkit_worker"), (RAW_PG, "raw_pg_inbox")):
        spec = {"topic": topic, "events": events, "mode": "pg_insert", "dedupe": "postgres",
                "dsn": dsn, "pool": POOL, **_tables(b, dsn),
                "settings": {"max_inflight": POOL}}  # fmt: skip
        tiers = 2 if contender == "streamkit_worker" else None
        outcomes[label].append(b.run(contender, spec, timeout=60 + events / 200, tiers=tiers))


def _notes(b: Bench, dsn: str | None) -> list[str]:
    s = b.sizes
    return [
        f"Dedupe rows: {s.s11_events:,} envelopes, {s.keys:,} keys, {s.partitions} partitions, "
        "a trivial handler (streamkit defaults). Dedupe is a middleware: a sync handler "
        "then leaves the inline hot path for the scope path (a task per event), which the "
        "pass-through row prices alone; an async handler takes that path anyway.",
        f"Inbox rows: {s.s11_pg_events:,} events into scripts/postgres-local (fsync off, a "
        "test server); per event one transaction holding the inbox INSERT and the handler's "
        f"one-row INSERT, in both rows. streamkit: pool of {POOL} connections, "
        f"max_inflight={POOL} (events of different keys overlap); the raw loop awaits each "
        "event in turn.",
        *([] if dsn else ["PostgreSQL unavailable (scripts/postgres-local start failed)."]),
    ]


def _postgres() -> str | None:
    done = subprocess.run([str(ROOT / "scripts" / "postgres-local"), "start"],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    return done.stdout.strip().splitlines()[-1] if done.returncode == 0 else None


def _tables(b: Bench, dsn: str) -> dict[str, str]:
    """A fresh inbox table (the inbox's own DDL) and effects table for one run."""
    import psycopg

    from streamkit.idempotency.postgres import PostgresInbox

    inbox, effects = b.name("inbox").replace("-", "_"), b.name("effects").replace("-", "_")

    async def create() -> None:
        store = PostgresInbox(dsn, table=inbox)
        await store.setup()
        await store.close()

    asyncio.run(create())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE TABLE "{effects}" (n int NOT NULL)')
    return {"inbox_table": inbox, "effects_table": effects}


def _ratios(rows: list[Any]) -> None:
    pairs = [(label, ref) for label, _, _, ref in MEMORY_ROWS if ref] + [(INBOX, RAW_PG)]
    for label, ref in pairs:
        mine, base = figure(rows, label, "events_per_s"), figure(rows, ref, "events_per_s")
        found = next((r for r in rows if r.label == label), None)
        if found is not None and mine and base:
            found.figures["ratio"] = mine / base


def _targets(rows: list[Any]) -> list[Target]:
    def ratio(label: str) -> float | None:
        return figure(rows, label, "ratio")

    return [
        Target("in-memory dedupe / none, async handler", ratio(ASYNC_DEDUPE), 0.8, unit="x"),
        Target("in-memory dedupe / none, trivial sync handler", ratio(SYNC_DEDUPE), 0.8, unit="x"),
        Target("PostgreSQL inbox / raw loop, same SQL (events/s)", ratio(INBOX), 0.8, unit="x"),
    ]
