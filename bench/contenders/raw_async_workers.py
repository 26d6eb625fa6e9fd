"""Reference for the I/O scenario: a hand-written confluent-kafka loop feeding asyncio
workers -- one per key with events waiting, not a task per event.

``consume(500, 0)`` on the loop thread -> validate -> the key's queue. A key's worker (a
task that lives while its queue has events) awaits the handler for each in turn, so key
order holds. At-least-once the cheapest way: a batch's offsets are committed once every
event of it and of the batches before it was handled (a counter per batch, no per-offset
state). At most ``MAX_BUFFERED`` events in memory (streamkit's default): consuming waits
above it. What this leaves out, and streamkit does: routing by event type, metrics,
retries and the DLQ, rebalances mid-flight, bounded shutdown.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from confluent_kafka import TopicPartition

from bench.contenders.common import Recorder
from bench.contenders.rawkafka import close, consumer
from bench.workload import Order, OrderEnvelope

MAX_BUFFERED = 10_000
IDLE_S = 0.001  # nothing ready in the client's queue: look again after this


class _Batch:
    """One consumed batch: events not yet handled, and where to commit once they are."""

    __slots__ = ("left", "positions")

    def __init__(self, msgs: list[Any]) -> None:
        self.left = len(msgs)
        self.positions = {(m.topic(), m.partition()): m.offset() + 1 for m in msgs}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_Loop(spec).main())


class _Loop:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.rec = Recorder(spec)
        self.sleep_s = float(spec["sleep_s"])
        self.c = consumer(spec)
        self.queues: dict[Any, deque[tuple[Order, _Batch]]] = {}
        self.batches: deque[_Batch] = deque()
        self.buffered = 0
        self.room = asyncio.Event()  # set while buffered is under the bound
        self.done = False

    async def main(self) -> dict[str, Any]:
        validate = OrderEnvelope.model_validate_json
        while not self.done:
            if self.buffered >= MAX_BUFFERED:
                self.room.clear()
                await self.room.wait()
            msgs = self.c.consume(500, 0)
            if not msgs:
                self._commit_done()
                await asyncio.sleep(IDLE_S)
                continue
            msgs = [m for m in msgs if m.error() is None]
            batch = _Batch(msgs)
            self.batches.append(batch)
            for m in msgs:
                self._queue(m.key(), validate(m.value()).data, batch)
            self._commit_done()
            await asyncio.sleep(0)  # the workers' turn
        close(self.c)
        return self.rec.result(self.spec)

    def _queue(self, key: Any, event: Order, batch: _Batch) -> None:
        self.buffered += 1
        queue = self.queues.get(key)
        if queue is None:  # no worker for this key: start one
            queue = self.queues[key] = deque()
            queue.append((event, batch))
            asyncio.get_running_loop().create_task(self._worker(key, queue))
        else:
            queue.append((event, batch))

    async def _worker(self, key: Any, queue: deque[tuple[Order, _Batch]]) -> None:
        rec = self.rec
        while queue:
            event, batch = queue[0]
            rec.order(event.order_id, event.seq)
            await asyncio.sleep(self.sleep_s)
            queue.popleft()
            batch.left -= 1
            self.buffered -= 1
            if self.buffered < MAX_BUFFERED // 2:
                self.room.set()
            if rec.hit():
                self.done = True
        del self.queues[key]

    def _commit_done(self) -> None:
        positions: dict[tuple[str, int], int] = {}
        while self.batches and not self.batches[0].left:
            positions.update(self.batches.popleft().positions)
        if positions:
            offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
            self.c.commit(offsets=offsets, asynchronous=True)
