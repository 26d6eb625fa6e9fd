"""For `streamkit replay` tests: the handler fails while $STREAMKIT_TEST_BROKEN exists.

Failures are non-retryable, so they go straight to the group's DLQ; the policy still
has two attempts, so the group has a first retry tier for `streamkit replay` to target.
Handled events are appended to $STREAMKIT_TEST_OUT as ``<id> <topic> <attempt> <partition>``.
"""

from __future__ import annotations

import os
from typing import Any

from streamkit import Context, FixedBackoff, RetryPolicy, Router


class HandlerBroken(Exception):
    """The bug the operator fixes before replaying."""


router = Router(
    retry=RetryPolicy(max_attempts=2, backoff=FixedBackoff(0), non_retryable=(HandlerBroken,))
)
_out: dict[str, int] = {}


def _write(line: str) -> None:
    if "fd" not in _out:  # opened on first use: importing this module has no side effect
        path = os.environ.get("STREAMKIT_TEST_OUT", os.devnull)
        _out["fd"] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(_out["fd"], line.encode())


@router.handler("fixable.event")
def on_event(data: dict[str, Any], ctx: Context) -> None:
    if os.path.exists(os.environ.get("STREAMKIT_TEST_BROKEN", "/nonexistent")):
        raise HandlerBroken(f"cannot handle event {data['id']} yet")
    _write(f"{data['id']} {ctx.topic} {ctx.attempt} {ctx.partition}\n")
