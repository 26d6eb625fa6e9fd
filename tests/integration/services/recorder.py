"""A service whose handlers append what they handled to $STREAMKIT_TEST_OUT.

One ``os.write`` per event on an O_APPEND descriptor: a line survives SIGKILL, and lines
from several processes do not interleave. ``$STREAMKIT_TEST_PACE`` (seconds) makes each
event take at least that long, so that a test can kill the service half-way through a
backlog, whatever the machine's speed.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel

from streamkit import Context, Router

router = Router()
_fd = os.open(
    os.environ.get("STREAMKIT_TEST_OUT", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT
)


_PACE = float(os.environ.get("STREAMKIT_TEST_PACE", "0"))


def record(kind: str, ctx: Context, extra: str = "") -> None:
    if _PACE:
        time.sleep(_PACE)
    key = ctx.key.decode() if ctx.key else "-"
    os.write(_fd, f"{kind} {ctx.partition} {ctx.offset} {key} {os.getpid()} {extra}\n".encode())


class Order(BaseModel):
    order_id: str
    amount_cents: int


@router.handler("order.created")
def on_created(order: Order, ctx: Context) -> None:
    record("created", ctx, order.order_id)


@router.handler("order.paid")
async def on_paid(order: Order, ctx: Context) -> None:
    await asyncio.sleep(0)
    record("paid", ctx, order.order_id)


@router.handler("order.note")
def on_note(data: dict[str, Any], ctx: Context) -> None:
    record("note", ctx, str(data.get("id")))


@router.handler("order.slow")
async def on_slow(data: dict[str, Any], ctx: Context) -> None:
    record("slow-start", ctx)
    await asyncio.sleep(float(data.get("seconds", 2)))
    record("slow-end", ctx)


@router.handler("order.block")
def on_block(data: dict[str, Any], ctx: Context) -> None:
    time.sleep(float(data.get("seconds", 1)))
    record("block", ctx)
