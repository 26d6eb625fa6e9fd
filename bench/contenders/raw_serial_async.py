"""Reference for the I/O scenario: the raw loop awaiting each async handler in turn."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, commit_batch, consumer
from bench.workload import Order, OrderEnvelope


def run(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_main(spec))


async def _main(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    sleep_s = float(spec["sleep_s"])

    async def handle(event: Order) -> bool:
        rec.order(event.order_id, event.seq)
        await asyncio.sleep(sleep_s)
        return rec.hit()

    c = consumer(spec)
    validate = OrderEnvelope.model_validate_json
    done = False
    while not done:
        msgs = c.consume(500, 0.1)
        for i, m in enumerate(msgs):
            if m.error() is None and await handle(validate(m.value()).data):
                done, msgs = True, msgs[: i + 1]  # commit only what was handled
                break
        if msgs:
            commit_batch(c, msgs)
    close(c)
    return rec.result(spec)
