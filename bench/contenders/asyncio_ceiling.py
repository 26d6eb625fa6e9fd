"""Reference for the I/O scenario: bare asyncio, no Kafka, ``sleep_s`` awaits with N in flight."""

from __future__ import annotations

import asyncio
from typing import Any

from bench.contenders.common import Recorder


def run(spec: dict[str, Any]) -> dict[str, Any]:
    rec = Recorder(spec)
    asyncio.run(_main(spec, rec))
    return rec.result(spec)


async def _main(spec: dict[str, Any], rec: Recorder) -> None:
    sleep_s, events, inflight = float(spec["sleep_s"]), int(spec["events"]), int(spec["inflight"])
    gate = asyncio.Semaphore(inflight)

    async def one() -> None:
        await asyncio.sleep(sleep_s)
        rec.hit()
        gate.release()

    tasks = set()
    for _ in range(events):
        await gate.acquire()
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
