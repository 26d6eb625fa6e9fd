"""Worker-style ceiling for the I/O scenario: bare asyncio, no Kafka, no task per event.

N long-lived coroutines (N = ``inflight``: streamkit's ``max_inflight``, one per key) each
await ``sleep_s`` once per event, in turn, until ``events`` are handled: what an event loop
does at best with N awaits in flight. ``asyncio_ceiling`` (a task per event) is the other
reference; the difference between the two is what creating a task per event costs.
"""

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
    left = [events]  # events not yet taken by a worker (shared: one loop thread)

    async def worker() -> None:
        while left[0] > 0:
            left[0] -= 1
            await asyncio.sleep(sleep_s)
            rec.hit()

    await asyncio.gather(*(worker() for _ in range(inflight)))
