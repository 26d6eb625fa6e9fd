"""FastStream, either backend: one subscriber with the typed envelope, logging off.

Defaults otherwise (ack policy ACK_FIRST: the client's periodic auto-commit), which is
FastStream's documented default and its fastest at-least-once-ish setting.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.contenders.common import Recorder
from bench.workload import OrderEnvelope


def run_with(broker_cls: Any, spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    asyncio.run(_main(broker_cls, spec, rec))
    return rec.result(spec)


def _subscriber_options(spec: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"group_id": spec["group"], "auto_offset_reset": "earliest"}
    if spec.get("max_workers"):
        options["max_workers"] = int(spec["max_workers"])
    return options


async def _main(broker_cls: Any, spec: dict[str, Any], rec: Recorder) -> None:
    done = asyncio.Event()
    broker = broker_cls(spec["bootstrap"], logger=None)
    sleep_s = float(spec.get("sleep_s", 0))

    @broker.subscriber(spec["topic"], **_subscriber_options(spec))  # type: ignore[misc]
    async def handle(body: OrderEnvelope) -> None:
        event = body.data
        if sleep_s:
            rec.order(event.order_id, event.seq)
            await asyncio.sleep(sleep_s)
        if rec.hit():
            done.set()

    await broker.start()
    await done.wait()
    await asyncio.wait_for(broker.stop(), 30)
