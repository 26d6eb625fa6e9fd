"""The streamkit handler of each scenario mode: ``make(spec, rec, stop) -> (fn, options)``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from bench.contenders.common import Recorder
from bench.journal import JOURNAL
from bench.workload import Order
from streamkit import Context, FixedBackoff, RetryPolicy

Stop = Callable[[], None]
Made = tuple[Callable[..., Any], dict[str, Any]]


class TransientError(Exception):
    """The failure scenario's one-off error."""


def sync_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    def on_order(event: Order) -> None:
        if rec.hit():
            stop()

    return on_order, {}


def io_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    sleep_s = float(spec["sleep_s"])

    async def on_order(event: Order) -> None:
        rec.order(event.order_id, event.seq)
        await asyncio.sleep(sleep_s)
        if rec.hit():
            stop()

    return on_order, {}


def latency_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    async def on_order(event: Order) -> None:
        if event.seq >= 0:  # warm-up events have negative sequence numbers
            rec.latency(event.ts)
        if rec.hit():
            stop()

    return on_order, {}


def fail_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    every = int(spec["fail_every"])  # 0: never (the failure scenario's baseline)

    def on_order(event: Order, ctx: Context) -> None:
        if ctx.attempt == 1 and every and event.seq % every == 0:
            raise TransientError("bench: fails once")
        if rec.hit():
            stop()

    return on_order, {"retry": RetryPolicy(max_attempts=2, backoff=FixedBackoff(0))}


def timeline_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    def on_order(event: Order) -> None:
        rec.timeline()
        rec.hit()

    return on_order, {}


def join_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    def on_order(event: Order, ctx: Context) -> None:
        rec.timeline(ctx.partition, event.ts)
        rec.hit()

    return on_order, {}


def async_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    async def on_order(event: Order) -> None:
        if rec.hit():
            stop()

    return on_order, {}


def pg_insert_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    from psycopg import sql

    from streamkit.idempotency.postgres import connection

    insert = sql.SQL("INSERT INTO {} (n) VALUES (%s)").format(sql.Identifier(spec["effects_table"]))

    async def on_order(event: Order, ctx: Context) -> None:
        await connection(ctx).execute(insert, (event.seq,))  # in the event's inbox transaction
        if rec.hit():
            stop()

    return on_order, {}


def lifecycle_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    """Appends (time, partition, seq) per event with one O_APPEND write: survives SIGKILL,
    so the parent can tell lost from handled-then-killed (bench.journal)."""
    fd = os.open(spec["journal"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def on_order(event: Order, ctx: Context) -> None:
        os.write(fd, JOURNAL.pack(time.time(), ctx.partition, event.seq))
        rec.hit()

    return on_order, {}


def relay_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    """Consume -> publish: one output per event (the runtime waits for its ack)."""

    def on_order(event: Order, ctx: Context) -> None:
        ctx.publish(RELAYED, {"seq": event.seq, "ts": event.ts}, key=event.order_id)
        if rec.hit():
            stop()

    return on_order, {}


def relay_emit_handler(spec: dict[str, Any], rec: Recorder, stop: Stop) -> Made:
    """Consume -> emit: one output per event, confirmed at the commit points."""

    def on_order(event: Order, ctx: Context) -> None:
        ctx.emit(RELAYED, {"seq": event.seq, "ts": event.ts}, key=event.order_id)
        if rec.hit():
            stop()

    return on_order, {}


RELAYED = "order.relayed"  # the event type the relay scenario publishes

HANDLERS: dict[str, Callable[[dict[str, Any], Recorder, Stop], Made]] = {
    "sync": sync_handler,
    "io": io_handler,
    "latency": latency_handler,
    "fail": fail_handler,
    "backlog": io_handler,
    "timeline": timeline_handler,
    "join": join_handler,
    "pg_insert": pg_insert_handler,
    "async": async_handler,
    "lifecycle": lifecycle_handler,
    "relay": relay_handler,
    "relay_emit": relay_emit_handler,
}
