"""The PostgreSQL transactional inbox against a real PostgreSQL (and the real broker)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from psycopg import sql

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit.codecs.base import event_record
from streamkit.codecs.json import JSON_ENVELOPE
from streamkit.idempotency import Backoff, Dedupe
from streamkit.idempotency.postgres import PostgresInbox, connection
from streamkit.observability.metrics import Metrics
from streamkit.testing import TestBroker
from tests.idempotency.conftest import LocalServer
from tests.integration.helpers import Service, ensure_failure_topics, produce_events
from tests.integration.services.inbox import router as inbox_router
from tests.integration.verifier import handled_lines, kill_then_drain

#: make test runs a short verifier; STREAMKIT_INBOX_EVENTS=20000 (make soak) the full one.
EVENTS = int(os.environ.get("STREAMKIT_INBOX_EVENTS", "3000"))
FAILS_FIRST = len(range(0, EVENTS, 97))  # events whose first attempt fails after its insert


@pytest.fixture
def tables(postgres: LocalServer) -> Iterator[tuple[str, str]]:
    """A fresh effects table and inbox table name for this test; dropped afterwards."""
    suffix = uuid.uuid4().hex[:8]
    effects, inbox = f"effects_{suffix}", f"inbox_{suffix}"
    with psycopg.connect(postgres.address, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (n int NOT NULL)").format(sql.Identifier(effects)))
    yield effects, inbox
    with psycopg.connect(postgres.address, autocommit=True) as conn:
        for name in (effects, inbox):
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def _rows(dsn: str, table: str) -> dict[int, int]:
    query = sql.SQL("SELECT n, count(*) FROM {} GROUP BY n").format(sql.Identifier(table))
    with psycopg.connect(dsn) as conn:
        return dict(conn.execute(query).fetchall())


def _append(broker: TestBroker, event_id: str, n: int) -> None:
    rec = event_record(JSON_ENVELOPE, broker.source, "t", {"n": n}, key="k", event_id=event_id)
    broker.append(rec.topic, rec.value, key=rec.key, headers=rec.headers)


def _router(inbox: PostgresInbox, effects: str, fail_first: bool = False) -> Router:
    router = Router(topics=["events"], middleware=[Dedupe(inbox, backoff=Backoff(0.01, 0.05))],
                    retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(0)))  # fmt: skip
    insert = sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(sql.Identifier(effects))

    @router.handler("t")
    async def handle(data: dict[str, int], ctx: Context) -> None:
        await connection(ctx).execute(insert, (data["n"],))
        if fail_first and ctx.attempt == 1:
            raise RuntimeError("fails after its insert")

    return router


def test_duplicates_write_nothing_and_a_failed_attempt_rolls_back(
    postgres: LocalServer, tables: tuple[str, str]
) -> None:
    effects, inbox_table = tables
    inbox = PostgresInbox(postgres.address, table=inbox_table)

    async def scenario() -> TestBroker:
        async with TestBroker(_router(inbox, effects, fail_first=True)) as broker:
            for n, eid in enumerate(["a", "b", "a", "b", "c"]):
                _append(broker, eid, n)
            await asyncio.wait_for(broker.run(), 30)
            await inbox.close()
            return broker

    broker = asyncio.run(scenario())
    # Each first attempt inserted and failed: rolled back with its inbox row, so its retry
    # ran; the second a and b (retried after the first ones committed) wrote nothing.
    assert _rows(postgres.address, effects) == {0: 1, 1: 1, 4: 1}
    assert broker.dead_letters == []
    assert _duplicates(broker) == 2


def _duplicates(broker: TestBroker) -> float:
    """Duplicates skipped on every topic (a retried duplicate counts on its retry tier)."""
    return sum(
        s.value
        for m in broker.metrics.registry.collect()
        for s in m.samples
        if s.name == "streamkit_duplicates_skipped_total"
    )


def test_a_handler_query_error_is_the_handlers_failure_not_an_outage(
    postgres: LocalServer, tables: tuple[str, str]
) -> None:
    # QueryCanceled is a psycopg OperationalError, but the link is healthy: the handler
    # failed (retry policy, then the DLQ), the database is not down (no hold).
    _, inbox_table = tables
    inbox = PostgresInbox(postgres.address, table=inbox_table)
    router = Router(topics=["events"], middleware=[Dedupe(inbox)],
                    retry=RetryPolicy(max_attempts=1))  # fmt: skip

    @router.handler("t")
    async def handle(data: dict[str, int], ctx: Context) -> None:
        await connection(ctx).execute("SET LOCAL statement_timeout = 1")
        await connection(ctx).execute("SELECT pg_sleep(1)")

    async def scenario() -> TestBroker:
        async with TestBroker(router) as broker:
            _append(broker, "slow", 1)
            await asyncio.wait_for(broker.run(), 30)
            return broker

    broker = asyncio.run(scenario())
    assert len(broker.dead_letters) == 1
    assert broker.dead_letters[0].header("streamkit-error-type") == "QueryCanceled"
    assert _store_errors(broker) == 0


def test_cleanup_deletes_rows_past_retention(
    postgres: LocalServer, tables: tuple[str, str]
) -> None:
    effects, inbox_table = tables
    inbox = PostgresInbox(postgres.address, table=inbox_table)

    async def scenario() -> int:
        async with TestBroker(_router(inbox, effects)) as broker:
            for n in range(3):
                _append(broker, f"e{n}", n)
            await asyncio.wait_for(broker.run(), 30)
        async with await psycopg.AsyncConnection.connect(postgres.address) as conn:
            await conn.execute(
                sql.SQL("UPDATE {} SET handled_at = now() - interval '8 days'"
                        " WHERE event_id <> 'e2'").format(sql.Identifier(inbox_table))
            )  # fmt: skip
        deleted = await inbox.cleanup()  # default retention: 7 days
        await inbox.close()
        return deleted

    assert asyncio.run(scenario()) == 2
    query = sql.SQL("SELECT event_id FROM {}").format(sql.Identifier(inbox_table))
    with psycopg.connect(postgres.address) as conn:
        assert conn.execute(query).fetchall() == [("e2",)]


def test_the_cleanup_job_runs_while_events_flow(
    postgres: LocalServer, tables: tuple[str, str]
) -> None:
    # cleanup_every=0: the first event starts the background delete of expired rows.
    effects, inbox_table = tables
    inbox = PostgresInbox(postgres.address, table=inbox_table, cleanup_every=0)
    old = sql.SQL("INSERT INTO {} VALUES ('test', 'old', now() - interval '30 days')")

    async def scenario() -> int:
        await inbox.setup()
        async with await psycopg.AsyncConnection.connect(postgres.address) as conn:
            await conn.execute(old.format(sql.Identifier(inbox_table)))
        async with TestBroker(_router(inbox, effects)) as broker:
            _append(broker, "new", 1)
            await asyncio.wait_for(broker.run(), 30)
            assert inbox._cleaning is not None  # started by the event
            return await asyncio.wait_for(inbox._cleaning, 30)

    assert asyncio.run(scenario()) == 1
    query = sql.SQL("SELECT event_id FROM {}").format(sql.Identifier(inbox_table))
    with psycopg.connect(postgres.address) as conn:
        assert conn.execute(query).fetchall() == [("new",)]


def test_database_down_holds_the_event_until_cancelled(tables: tuple[str, str]) -> None:
    # A port nothing listens on: every connect fails; the event waits in the middleware's
    # scope (handler not run, errors counted) until shutdown cancels it -- never a failure
    # for the retry path or the DLQ to see.
    _, inbox_table = tables
    inbox = PostgresInbox("postgresql://streamkit@127.0.0.1:9/x?connect_timeout=1",
                          table=inbox_table, timeout=0.2)  # fmt: skip
    dedupe = Dedupe(inbox, backoff=Backoff(0.01, 0.05))
    metrics = Metrics()
    dedupe.bind(metrics, "g")
    ran: list[str] = []

    async def handler() -> None:
        ran.append("handler")

    async def scenario() -> None:
        held = asyncio.create_task(dedupe.handle(_context("a"), handler))
        done, _ = await asyncio.wait([held], timeout=1.5)
        assert not done, "the event should be held while the database is down"
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        await inbox.close()

    asyncio.run(scenario())
    assert ran == []
    errors = metrics.registry.get_sample_value(
        "streamkit_dedupe_store_errors_total", {"group": "g", "store": "postgres"})  # fmt: skip
    assert errors is not None and errors >= 2


def test_postgres_restarted_mid_stream_events_wait_then_run_once(
    postgres: LocalServer, tables: tuple[str, str]
) -> None:
    # The pool's idle connections die with the server: the first use finds them broken,
    # which is the database being down (held), not the handler failing (retry path).
    if not postgres.owned:
        pytest.skip("needs a PostgreSQL this session may stop (scripts/postgres-local)")
    effects, inbox_table = tables
    inbox = PostgresInbox(postgres.address, table=inbox_table, timeout=0.5)

    async def scenario() -> TestBroker:
        async with TestBroker(_router(inbox, effects)) as broker:
            for n in range(5):
                _append(broker, f"e{n}", n)
            await asyncio.wait_for(broker.run(), 30)
            await asyncio.to_thread(postgres.stop)
            try:
                for n in range(5, 10):
                    _append(broker, f"e{n}", n)
                running = asyncio.create_task(broker.run())
                async with asyncio.timeout(30):  # the held events count store errors
                    while _store_errors(broker) < 2:
                        assert not running.done(), "events ran while PostgreSQL was down"
                        await asyncio.sleep(0.05)
            finally:
                await asyncio.to_thread(postgres.start)
            await asyncio.wait_for(running, 60)
            return broker

    broker = asyncio.run(scenario())
    assert _rows(postgres.address, effects) == {n: 1 for n in range(10)}
    assert broker.dead_letters == []


def _store_errors(broker: TestBroker) -> float:
    labels = {"group": "test", "store": "postgres"}
    return (
        broker.metrics.registry.get_sample_value("streamkit_dedupe_store_errors_total", labels) or 0
    )


def _context(event_id: str) -> Context:
    return Context(topic="events", partition=0, offset=0, key=None, headers=None,
                   event_type="t", event_id=event_id, attempt=1, timestamp=0, group="g",
                   publisher=None)  # fmt: skip


@pytest.mark.kafka
@pytest.mark.timeout(600)
@pytest.mark.parametrize("inbox", ["on", "off"])
def test_one_row_per_event_through_five_sigkills(
    inbox: str, postgres: LocalServer, tables: tuple[str, str],
    kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Path,
) -> None:  # fmt: skip
    # Contract: with the inbox, each event's row exists exactly once after 5 SIGKILLs at
    # random points and a drain; the same run without it doubles rows (the check can fail).
    effects, inbox_table = tables
    group, source = f"inbox-{unique}", make_topic("inbox-in", partitions=3)
    ensure_failure_topics(kafka_bootstrap, inbox_router, source, group)
    produce_events(kafka_bootstrap, source,
                   [("order.created", {"n": n}, f"k{n % 100}") for n in range(EVENTS)])  # fmt: skip
    out = tmp_path / "handled.txt"
    env = {"STREAMKIT_TEST_POSTGRES": postgres.address, "STREAMKIT_TEST_TABLE": effects,
           "STREAMKIT_TEST_INBOX": inbox, "STREAMKIT_TEST_INBOX_TABLE": inbox_table,
           "STREAMKIT_COMMIT_INTERVAL": "0.2",
           # the same static member each restart: it takes its partitions back at once
           "STREAMKIT_KAFKA": orjson.dumps({"session.timeout.ms": "6000",
                                            "group.instance.id": group}).decode()}  # fmt: skip
    kill_then_drain(
        lambda: Service("tests.integration.services.inbox", bootstrap=kafka_bootstrap,
                        group=group, topics=[source], out=out, env=env),
        lambda: handled_lines(out),
        events=EVENTS, kills=5, seed=unique, bootstrap=kafka_bootstrap,
        group=group, topic=source, partitions=3,
    )  # fmt: skip
    rows = _rows(postgres.address, effects)
    missing = [n for n in range(EVENTS) if n not in rows]
    doubled = sum(c - 1 for c in rows.values() if c > 1)
    print(
        f"\ninbox verifier [{inbox}]: {EVENTS} events, 5 kills, handler runs="
        f"{handled_lines(out)}, missing={len(missing)}, duplicated rows={doubled}"
    )
    assert missing == []
    if inbox == "on":
        assert doubled == 0
    else:  # beyond the retried first attempts: the kills' redeliveries double rows too
        assert doubled > FAILS_FIRST
