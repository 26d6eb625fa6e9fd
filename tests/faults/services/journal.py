"""A service that journals every record its handlers finish, for the fault verifier.

Each finished record appends ``topic partition offset key seq pid`` to $STREAMKIT_TEST_OUT with
one ``os.write`` on an O_APPEND descriptor: a line survives SIGKILL and lines of several
processes do not interleave. ``seq`` comes from the payload (``data["seq"]``).

Event types: ``j.sync`` (plain sync), ``j.async``, ``j.block`` (``blocking=True``, sleeps
``data["sleep"]`` seconds first), and the poison ones: ``j.fail`` (always raises a
non-retryable error: straight to the DLQ), ``j.nan`` (``raise Retry(delay=nan)``),
``j.base`` (raises the BaseException subclass named by ``data["raise_"]``), ``j.publish``
(publishes ``data["n"]`` events to ``data["to"]`` and awaits none of them).
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from streamkit import Context, FixedBackoff, Retry, RetryPolicy, Router


class Poison(Exception):
    """The failure of ``j.fail``: non-retryable, so the record goes straight to the DLQ."""


class Interrupted(KeyboardInterrupt):
    """A KeyboardInterrupt subclass raised by a handler (not by a signal)."""


class Exited(SystemExit):
    """A SystemExit subclass raised by a handler."""


class GeneratorClosed(GeneratorExit):
    """A GeneratorExit subclass raised by a handler."""


RAISES: dict[str, type[BaseException]] = {
    "KeyboardInterrupt": Interrupted,
    "SystemExit": Exited,
    "GeneratorExit": GeneratorClosed,
}
router = Router(retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0), non_retryable=(Poison,)))
_out: dict[str, int] = {}


def journal(ctx: Context, data: dict[str, Any]) -> None:
    """Append this record's line (opened on first use: importing has no side effect)."""
    if "fd" not in _out:
        path = os.environ.get("STREAMKIT_TEST_OUT", os.devnull)
        _out["fd"] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    key = ctx.key.decode("utf-8", "backslashreplace").replace(" ", "_") if ctx.key else "-"
    line = f"{ctx.topic} {ctx.partition} {ctx.offset} {key} {data.get('seq', -1)} {os.getpid()}\n"
    os.write(_out["fd"], line.encode())


@router.handler("j.sync")
def on_sync(data: dict[str, Any], ctx: Context) -> None:
    journal(ctx, data)


@router.handler("j.async")
async def on_async(data: dict[str, Any], ctx: Context) -> None:
    await asyncio.sleep(float(data.get("sleep", 0)))
    journal(ctx, data)


@router.handler("j.block", blocking=True)
def on_block(data: dict[str, Any], ctx: Context) -> None:
    time.sleep(float(data.get("sleep", 0)))
    journal(ctx, data)


@router.handler("j.fail")
def on_fail(data: dict[str, Any], ctx: Context) -> None:
    raise Poison(f"record {data.get('seq')} always fails")


@router.handler("j.nan")
def on_nan(data: dict[str, Any], ctx: Context) -> None:
    raise Retry(delay=float("nan"))


@router.handler("j.base")
def on_base(data: dict[str, Any], ctx: Context) -> None:
    raise RAISES[str(data["raise_"])](f"raised by the handler of seq {data.get('seq')}")


@router.handler("j.publish")
async def on_publish(data: dict[str, Any], ctx: Context) -> None:
    journal(ctx, {"seq": -1})  # started
    for i in range(int(data["n"])):
        ctx.publish("j.sync", {"seq": i, "pad": "x" * 100}, topic=str(data["to"]))
    journal(ctx, data)
