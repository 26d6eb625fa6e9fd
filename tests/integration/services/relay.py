"""Consume -> publish: each order.created publishes one invoice.requested (exactly-once tests).

Every 97th event fails its first attempt, so retry-tier records are part of the
transactions too. ``$STREAMKIT_TEST_SLOW_MS`` slows each event down (zombie test).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from streamkit import Context, FixedBackoff, RetryPolicy, Router

router = Router(
    retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(0)),
    publish_topics={"invoice.requested": os.environ.get("STREAMKIT_TEST_OUTPUT_TOPIC", "out")},
)
_fd = os.open(
    os.environ.get("STREAMKIT_TEST_OUT", os.devnull), os.O_WRONLY | os.O_APPEND | os.O_CREAT
)
_SLOW = float(os.environ.get("STREAMKIT_TEST_SLOW_MS", "0")) / 1000


@router.handler("order.created")
async def on_created(data: dict[str, Any], ctx: Context) -> None:
    if data["n"] % 97 == 0 and ctx.attempt == 1:
        raise ConnectionError("first attempt fails")
    if _SLOW:
        await asyncio.sleep(_SLOW)
    await ctx.publish("invoice.requested", {"n": data["n"]}, key=ctx.key)
    os.write(_fd, b"%d\n" % data["n"])
