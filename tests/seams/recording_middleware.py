"""A test-only middleware in one module: a scope that sets a contextvar, and a publish hook.

What it records proves the seam: the scope wraps sync, async and ``blocking=True`` handlers;
a contextvar set in the scope is visible inside the handler (also in the blocking thread);
``ctx.state`` carries a value from the scope to the publish hook of the same event.
"""

from __future__ import annotations

import contextvars

from streamkit import Context, Middleware
from streamkit.handlers.middleware import CallNext, CallNextSync
from streamkit.record import OutgoingRecord

CURRENT = contextvars.ContextVar[str | None]("current_event", default=None)


class Recording(Middleware):
    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []

    async def handle(self, ctx: Context, call_next: CallNext) -> None:
        self.log.append(("enter", ctx.event_type))
        ctx.state["trace"] = f"trace-{ctx.offset}"
        token = CURRENT.set(ctx.event_type)
        try:
            await call_next()
        finally:
            CURRENT.reset(token)
            self.log.append(("exit", ctx.event_type))

    def before_publish(self, record: OutgoingRecord, ctx: Context | None) -> None:
        trace = ctx.state.get("trace", "none") if ctx is not None else "none"
        record.headers.append(("x-trace", trace.encode()))
        self.log.append(("publish", record.kind))


class SyncRecording(Recording):
    """The same scope with a sync form too: plain sync handlers run in it, with no task."""

    def handle_sync(self, ctx: Context, call_next: CallNextSync) -> None:
        self.log.append(("enter", ctx.event_type))
        self.log.append(("sync scope", ctx.event_type))
        ctx.state["trace"] = f"trace-{ctx.offset}"
        token = CURRENT.set(ctx.event_type)
        try:
            call_next()
        finally:
            CURRENT.reset(token)
            self.log.append(("exit", ctx.event_type))


class Broken(Middleware):
    """Fails before and after: the worker must go on, the handler must still run."""

    async def handle(self, ctx: Context, call_next: CallNext) -> None:
        raise RuntimeError("middleware bug")

    def before_publish(self, record: OutgoingRecord, ctx: Context | None) -> None:
        raise RuntimeError("hook bug")


class BrokenSync(Broken):
    """Broken in its sync form as well."""

    def handle_sync(self, ctx: Context, call_next: CallNextSync) -> None:
        raise RuntimeError("middleware bug")
