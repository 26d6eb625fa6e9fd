"""The PostgreSQL transactional inbox: the handler's writes and the event's id, one commit.

Needs the ``streamkit[postgres]`` extra (psycopg 3 and psycopg_pool, async). For each
event streamkit takes a pooled connection, opens a transaction, inserts
``(consumer_group, event_id)`` into the inbox table (primary key), and hands the handler
that transaction: ``connection(ctx)``. The handler's writes and the inbox row commit
together, so:

- a duplicate finds its row (the insert does nothing): skipped, nothing written;
- a crash before the commit leaves nothing -- the event is delivered again and runs again;
- a crash after it is a duplicate at redelivery.

That is exactly-once for the database's effects (not for calls to other systems, nor for
``ctx.publish``). A handler that raises rolls its writes back with the inbox row and
follows its retry policy. The database down (connect, pool timeout, a broken connection)
raises :class:`~streamkit.idempotency.base.StoreUnavailableError`: the event is held and
run again from the start once it answers.

Retention: rows older than ``retention`` (default 7 days) are deleted in batches by a
background job every ``cleanup_every`` seconds (also :meth:`PostgresInbox.cleanup`). A
duplicate arriving later than that -- a replay of an old offset -- runs again, so keep
``retention`` above the topics' retention if replays from the start must stay no-ops.
Cost: one pooled transaction and one indexed insert per event.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import structlog

from streamkit.errors import ConfigError
from streamkit.idempotency.base import StoreUnavailableError

try:
    import psycopg
    from psycopg import sql
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - the extra is in [dev]
    raise ConfigError(
        "the PostgreSQL inbox needs psycopg 3: pip install 'streamkit[postgres]'"
    ) from exc

if TYPE_CHECKING:
    from streamkit.handlers.context import Context
    from streamkit.handlers.middleware import CallNext
    from streamkit.idempotency.base import Hold

__all__ = ["DEFAULT_RETENTION", "PostgresInbox", "connection"]

log = structlog.get_logger("streamkit.idempotency")
DEFAULT_RETENTION = timedelta(days=7)
_STATE = "streamkit.inbox.connection"  # ctx.state key: the event's transaction
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_CLEANUP_BATCH = 10_000
AsyncConn = psycopg.AsyncConnection[Any]


def connection(ctx: Context) -> AsyncConn:
    """The event's inbox transaction, for the handler's own writes (committed with it)."""
    conn: AsyncConn | None = ctx.state.get(_STATE)
    if conn is None:
        raise RuntimeError("no inbox transaction: add Dedupe(PostgresInbox(...)) to the router")
    return conn


class _Seen(Exception):
    """The inbox row exists: roll back, skip."""


class PostgresInbox:
    """A dedupe store whose marks commit in the handler's own transaction.

    ``pool`` is a psycopg_pool ``AsyncConnectionPool`` (size it to the handler concurrency)
    or a conninfo string (a pool of up to ``max_size`` is opened on first use). The table
    is created on first use if missing. Each event holds a connection for its handler's
    run: keep ``--max-inflight`` near the pool size (an event waiting longer than
    ``timeout`` for a connection is held like an outage, and counted as one).
    """

    name = "postgres"

    def __init__(
        self,
        pool: AsyncConnectionPool | str,
        *,
        table: str = "streamkit_inbox",
        retention: timedelta = DEFAULT_RETENTION,
        cleanup_every: float = 3600.0,
        timeout: float = 5.0,
        max_size: int = 10,
    ) -> None:
        if not _TABLE_NAME.match(table):
            raise ConfigError(f"PostgresInbox: table must be a plain identifier, got {table!r}")
        self._given = pool if isinstance(pool, AsyncConnectionPool) else None
        self._conninfo = pool if isinstance(pool, str) else ""
        self._pool: AsyncConnectionPool | None = self._given
        self.table = table
        self.retention = retention
        self.cleanup_every = cleanup_every
        self.timeout = timeout
        self.max_size = max_size
        ident = sql.Identifier(table)
        self._insert = sql.SQL(
            "INSERT INTO {} (consumer_group, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
        ).format(ident)
        self._ready = False
        self._next_cleanup = time.monotonic() + cleanup_every
        self._cleaning: asyncio.Task[int] | None = None

    async def run_once(self, ctx: Context, key: str, call: CallNext, hold: Hold) -> bool:
        """Insert the inbox row, run the handler in that transaction, commit both."""
        if not self._ready:
            await hold(self.setup)
        self._maybe_cleanup()
        return await hold(lambda: self._attempt(ctx, key, call))

    async def _attempt(self, ctx: Context, key: str, call: CallNext) -> bool:
        pool = await self._open()
        failed: list[BaseException] = []  # the handler's own exception, if it raised
        try:
            async with pool.connection(timeout=self.timeout) as conn:
                try:
                    await self._transaction(conn, ctx, key, call, failed)
                except _Seen:
                    return False
                except Exception as exc:
                    raise _classify(exc, failed, conn) from None
        except psycopg.OperationalError as exc:  # connect, pool timeout, commit on a lost link
            if failed and exc is failed[0]:
                raise  # the handler's own (a cancelled query on a healthy link): its failure
            raise StoreUnavailableError(f"postgres: {exc}") from exc
        return True

    async def _transaction(
        self, conn: AsyncConn, ctx: Context, key: str, call: CallNext, failed: list[BaseException]
    ) -> None:
        async with conn.transaction():
            cur = await conn.execute(self._insert, (ctx.group, key))
            if cur.rowcount == 0:
                raise _Seen
            ctx.state[_STATE] = conn
            try:
                await call()
            except BaseException as exc:
                failed.append(exc)
                raise
            finally:
                del ctx.state[_STATE]
        # Committed: a crash from here on makes the redelivered event a duplicate.

    async def _open(self) -> AsyncConnectionPool:
        if self._pool is None:
            # Opened without waiting: a database down at start is held like any outage.
            pool = AsyncConnectionPool(
                self._conninfo, min_size=1, max_size=self.max_size, open=False
            )
            await pool.open(wait=False)
            self._pool = pool
        return self._pool

    async def setup(self) -> None:
        """Create the inbox table and its age index if missing (idempotent)."""
        ident = sql.Identifier(self.table)
        ddl = sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (consumer_group text NOT NULL, event_id text NOT NULL,"
            " handled_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (consumer_group, event_id));"
            " CREATE INDEX IF NOT EXISTS {} ON {} (handled_at)"
        ).format(ident, sql.Identifier(f"{self.table}_handled_at"), ident)
        try:
            pool = await self._open()
            async with pool.connection(timeout=self.timeout) as conn, conn.transaction():
                # Two workers creating the table at once would collide on the catalog.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))
                await conn.execute(ddl)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"postgres: {exc}") from exc
        self._ready = True

    def _maybe_cleanup(self) -> None:
        now = time.monotonic()
        if now < self._next_cleanup or (self._cleaning and not self._cleaning.done()):
            return
        self._next_cleanup = now + self.cleanup_every
        self._cleaning = asyncio.get_running_loop().create_task(self._cleanup_logged())

    async def _cleanup_logged(self) -> int:
        try:
            return await self.cleanup()
        except Exception as exc:  # best effort: the next run catches up
            log.warning("inbox cleanup failed", table=self.table, error=str(exc))
            return 0

    async def cleanup(self) -> int:
        """Delete rows older than ``retention`` in batches; returns how many went."""
        ident = sql.Identifier(self.table)
        delete = sql.SQL(
            "DELETE FROM {} WHERE ctid IN (SELECT ctid FROM {} WHERE handled_at < now() - %s"
            " LIMIT %s)"
        ).format(ident, ident)
        pool = await self._open()
        total = 0
        while True:
            async with pool.connection(timeout=self.timeout) as conn:
                cur = await conn.execute(delete, (self.retention, _CLEANUP_BATCH))
                total += cur.rowcount
            if cur.rowcount < _CLEANUP_BATCH:
                break
        log.info("inbox cleanup", table=self.table, deleted=total)
        return total

    async def close(self) -> None:
        """Close the pool this inbox opened (a pool you passed in stays yours); called when
        the worker stops, and a later start opens a new one."""
        if self._cleaning is not None:
            self._cleaning.cancel()
        if self._pool is not None and self._given is None:
            await self._pool.close()
            self._pool = None


def _classify(exc: Exception, failed: list[BaseException], conn: AsyncConn) -> Exception:
    """The handler's failure stays its own (retry policy), unless the link broke under it:
    then the database is down, and the whole event runs again once it is back."""
    if conn.broken or (isinstance(exc, psycopg.OperationalError) and not failed):
        return StoreUnavailableError(f"postgres: {exc}")
    return failed[0] if failed and isinstance(failed[0], Exception) else exc
