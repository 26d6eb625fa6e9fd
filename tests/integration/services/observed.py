"""A service that exercises every metric the dashboard and alerts read.

- ``obs.ok`` succeeds;
- ``obs.flaky`` fails on its first attempt when ``data["fail"] == "once"`` (then succeeds
  from the retry tier) and on every attempt when ``"always"`` (then lands in the DLQ);
- ``obs.held`` (async) waits until the file named by ``$OBSERVED_GATE`` exists, so a test
  can hold a backlog (lag above 0) for as long as it needs and then let it drain.

One retry tier, no backoff: a retried event is handled again at once.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from streamkit import Context, FixedBackoff, RetryPolicy, Router

router = Router(retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0)))


class FlakyError(RuntimeError):
    """The failure ``obs.flaky`` raises; its class name is the DLQ's error_type label."""


@router.handler("obs.ok")
def on_ok(data: dict[str, Any]) -> None:
    """Always succeeds."""


@router.handler("obs.flaky")
def on_flaky(data: dict[str, Any], ctx: Context) -> None:
    """Fails the first attempt ("once") or every attempt ("always")."""
    fail = data.get("fail")
    if fail == "always" or (fail == "once" and ctx.attempt == 1):
        raise FlakyError(f"attempt {ctx.attempt} failed on purpose")


@router.handler("obs.held")
async def on_held(data: dict[str, Any]) -> None:
    """Returns once the gate file exists (no gate configured: at once)."""
    gate = os.environ.get("OBSERVED_GATE")
    while gate and not os.path.exists(gate):
        await asyncio.sleep(0.05)
