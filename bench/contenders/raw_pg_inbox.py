"""Reference for the inbox scenario: the raw loop doing the inbox's SQL by hand.

consume(500) -> per event one transaction: ``INSERT`` the event id into the inbox table
(``ON CONFLICT DO NOTHING``), and if it was new the handler's one-row ``INSERT``; commit;
one asynchronous Kafka commit per batch. The same statements and the same batching (one
database transaction per event) as streamkit's ``PostgresInbox``, awaited one at a time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from psycopg import sql

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, commit_batch, consumer
from bench.workload import OrderEnvelope


def run(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_main(spec))


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    inbox = sql.SQL(
        "INSERT INTO {} (consumer_group, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING"
    ).format(sql.Identifier(spec["inbox_table"]))
    effect = sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(sql.Identifier(spec["effects_table"]))
    group = spec["group"]
    conn = await psycopg.AsyncConnection.connect(spec["dsn"])

    async def handle(envelope: OrderEnvelope) -> bool:
        async with conn.transaction():
            cur = await conn.execute(inbox, (group, envelope.event_id))
            if cur.rowcount:
                await conn.execute(effect, (envelope.data.seq,))
        return rec.hit()

    c = consumer(spec)
    validate = OrderEnvelope.model_validate_json
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is None and await handle(validate(m.value())):
                done, msgs = True, msgs[: i + 1]  # commit only what was handled
                break
        if msgs:
            commit_batch(c, msgs)
    close(c)
    await conn.close()
    return rec.result(spec)
