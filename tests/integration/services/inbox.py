"""Each order.created inserts one row into ``$STREAMKIT_TEST_TABLE`` (inbox verifier).

``STREAMKIT_TEST_INBOX=on``: in the event's inbox transaction (exactly once);
``off``: in a transaction of its own, as a handler without the inbox would (at least once).
Every 97th event fails its first attempt *after* its insert, so a rolled-back write and
its retry are part of the run. Each run is recorded in ``$STREAMKIT_TEST_OUT``.
"""

from __future__ import annotations

import os
from typing import Any

from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from streamkit.idempotency import Dedupe
from streamkit.idempotency.postgres import PostgresInbox, connection

DSN = os.environ.get("STREAMKIT_TEST_POSTGRES", "")
TABLE = sql.Identifier(os.environ.get("STREAMKIT_TEST_TABLE", "effects"))
INBOX = os.environ.get("STREAMKIT_TEST_INBOX", "on") == "on"
INSERT = sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(TABLE)

store = PostgresInbox(DSN, table=os.environ.get("STREAMKIT_TEST_INBOX_TABLE", "streamkit_inbox"))
router = Router(
    retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(0)),
    middleware=[Dedupe(store)] if INBOX else [],
)
_fd = os.open(
    os.environ.get("STREAMKIT_TEST_OUT", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT
)
_plain: list[AsyncConnectionPool] = []


async def _own_transaction(n: int) -> None:
    if not _plain:
        _plain.append(AsyncConnectionPool(DSN, max_size=10, open=False))
        await _plain[0].open()
    async with _plain[0].connection() as conn, conn.transaction():
        await conn.execute(INSERT, (n,))


@router.handler("order.created")
async def on_created(data: dict[str, Any], ctx: Context) -> None:
    n = data["n"]
    if INBOX:
        await connection(ctx).execute(INSERT, (n,))
    else:
        await _own_transaction(n)
    os.write(_fd, b"%d\n" % n)
    if n % 97 == 0 and ctx.attempt == 1:
        raise ConnectionError("first attempt fails after its insert")
