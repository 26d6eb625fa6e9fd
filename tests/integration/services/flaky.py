"""Every even event fails on its first attempt and is retried 3 s later."""

from __future__ import annotations

from typing import Any

from streamkit import Context, FixedBackoff, RetryPolicy, Router
from tests.integration.services.recorder import record

router = Router()


@router.handler("flaky", retry=RetryPolicy(max_attempts=3, backoff=FixedBackoff(3.0)))
def on_flaky(data: dict[str, Any], ctx: Context) -> None:
    if data["n"] % 2 == 0 and ctx.attempt == 1:
        record("fail", ctx, str(data["n"]))
        raise TimeoutError("downstream timed out")
    record("ok", ctx, str(data["n"]))
