"""Running a router's middleware: the scope onion and the publish hooks, both guarded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import structlog

from streamkit.errors import Skip
from streamkit.handlers.middleware import CallNext, Middleware

if TYPE_CHECKING:
    from streamkit.handlers.context import Context
    from streamkit.record import OutgoingRecord

log = structlog.get_logger("streamkit.middleware")


class MiddlewareChain:
    """The middleware of one router, outermost first."""

    __slots__ = ("_hooks", "_scopes")

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self._scopes = list(middleware)
        # Only middleware that overrides the hook costs a call per record sent.
        self._hooks = [
            mw for mw in middleware if type(mw).before_publish is not Middleware.before_publish
        ]

    def __bool__(self) -> bool:
        return bool(self._scopes)

    async def run(self, ctx: Context, call: CallNext) -> None:
        """Run ``call`` (the handler) inside every middleware's scope."""
        call_next = call
        for mw in reversed(self._scopes):
            call_next = _guarded(mw, ctx, call_next)
        await call_next()

    def before_publish(self, record: OutgoingRecord, ctx: Context | None) -> None:
        """Let each publish hook see (and add headers to) ``record``."""
        for mw in self._hooks:
            try:
                mw.before_publish(record, ctx)
            except Exception:
                log.exception("middleware before_publish failed", middleware=type(mw).__name__)


async def close_all(middleware: Sequence[Middleware]) -> None:
    """Close every middleware; a failing close is logged, the others still run."""
    for mw in middleware:
        try:
            await mw.close()
        except Exception:
            log.exception("middleware close failed", middleware=type(mw).__name__)


def _guarded(mw: Middleware, ctx: Context, inner: CallNext) -> CallNext:
    """``mw``'s scope around ``inner``, such that a failing middleware never loses the event.

    The handler's own exception passes through as it is (even if the middleware wrapped
    it); an exception of the middleware's is logged, and the handler runs anyway if the
    middleware failed before calling it.
    """

    async def scoped() -> None:
        called = False
        handler_error: BaseException | None = None

        async def call_next() -> None:
            nonlocal called, handler_error
            called = True
            try:
                await inner()
            except BaseException as exc:
                handler_error = exc
                raise

        try:
            await mw.handle(ctx, call_next)
        except BaseException as exc:
            if exc is handler_error:
                raise
            if handler_error is not None:  # the middleware wrapped it: the original counts
                raise handler_error from None
            if not isinstance(exc, Exception):
                raise  # cancellation, exit: not the middleware's to swallow
            if isinstance(exc, Skip) and not called:
                raise  # a middleware skipping the event on purpose (a duplicate)
            log.exception("middleware failed", middleware=type(mw).__name__)
            if not called:
                await inner()

    return scoped
