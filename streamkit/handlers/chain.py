"""Running a router's middleware: the scope onion and the publish hooks, both guarded."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from functools import partial
from typing import TYPE_CHECKING

import structlog

from streamkit.errors import Skip, TransientDependencyError
from streamkit.handlers.middleware import CallNext, CallNextSync, Middleware

if TYPE_CHECKING:
    from streamkit.handlers.context import Context
    from streamkit.record import OutgoingRecord

log = structlog.get_logger("streamkit.middleware")


class MiddlewareChain:
    """The middleware of one router, outermost first."""

    __slots__ = ("_hooks", "_scopes", "active", "hooked", "runs_sync")

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self._scopes = list(middleware)
        # Read per event by the dispatcher: an attribute, where ``bool(chain)`` is a call.
        self.active = bool(self._scopes)
        # Only middleware that overrides the hook costs a call per record sent.
        self._hooks = [
            mw for mw in middleware if type(mw).before_publish is not Middleware.before_publish
        ]
        self.hooked = bool(self._hooks)  # any publish hook: else a send skips the call

        # Sync handlers skip the task when every scope has a sync form (see handle_sync).
        self.runs_sync = all(_has_sync_scope(mw) for mw in middleware)

    def __bool__(self) -> bool:
        return bool(self._scopes)

    def run(self, ctx: Context, call: CallNext) -> Awaitable[None]:
        """Run ``call`` (the handler) inside every middleware's scope: await the result."""
        scopes = self._scopes
        inner = call
        for mw in reversed(scopes[1:]):
            inner = partial(_run_guarded, mw, ctx, inner)
        return _run_guarded(scopes[0], ctx, inner)

    def run_sync(self, ctx: Context, call: CallNextSync) -> None:
        """Run the sync ``call`` inside every scope's ``handle_sync`` (needs ``runs_sync``)."""
        scopes = self._scopes
        inner = call
        for mw in reversed(scopes[1:]):
            inner = partial(_run_guarded_sync, mw, ctx, inner)
        _run_guarded_sync(scopes[0], ctx, inner)

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


class _Next:
    """The ``call_next`` a scope gets: runs what is inside it, and remembers whether it was
    called and what the inside raised (one object instead of closures and cells: this runs
    for every event)."""

    __slots__ = ("called", "error", "inner")

    def __init__(self, inner: CallNext) -> None:
        self.inner = inner
        self.called = False
        self.error: BaseException | None = None

    def __call__(self) -> Awaitable[None]:
        self.called = True
        return self._run()

    async def _run(self) -> None:
        try:
            await self.inner()
        except BaseException as exc:
            self.error = exc
            raise


async def _run_guarded(mw: Middleware, ctx: Context, inner: CallNext) -> None:
    """``mw``'s scope around ``inner``, such that a failing middleware never loses the event.

    The handler's own exception passes through as it is (even if the middleware wrapped
    it); an exception of the middleware's is logged, and the handler runs anyway if the
    middleware failed before calling it.
    """
    call_next = _Next(inner)
    try:
        await mw.handle(ctx, call_next)
    except BaseException as exc:
        _pass_on(mw, exc, call_next)
        if not call_next.called:
            await inner()


def _has_sync_scope(mw: Middleware) -> bool:
    """The hooks-only default, or a ``handle_sync`` of its own beside a custom ``handle``
    (unless the instance says otherwise: ``sync_scope = False``)."""
    cls = type(mw)
    if cls.handle is Middleware.handle:
        return True
    return cls.handle_sync is not Middleware.handle_sync and bool(mw.sync_scope)


class _NextSync:
    """:class:`_Next` for ``handle_sync``."""

    __slots__ = ("called", "error", "inner")

    def __init__(self, inner: CallNextSync) -> None:
        self.inner = inner
        self.called = False
        self.error: BaseException | None = None

    def __call__(self) -> None:
        self.called = True
        try:
            self.inner()
        except BaseException as exc:
            self.error = exc
            raise


def _run_guarded_sync(mw: Middleware, ctx: Context, inner: CallNextSync) -> None:
    """:func:`_run_guarded` for ``handle_sync``: the same rules, without a coroutine."""
    call_next = _NextSync(inner)
    try:
        mw.handle_sync(ctx, call_next)
    except BaseException as exc:
        _pass_on(mw, exc, call_next)
        if not call_next.called:
            inner()


def _pass_on(mw: Middleware, exc: BaseException, call_next: _Next | _NextSync) -> None:
    """Raise what a scope that raised ``exc`` passes on; return if it was the
    middleware's own error (logged: the caller then runs the handler if it has not run)."""
    passing = _passing(mw, exc, call_next.error, call_next.called)
    if passing is exc:
        raise exc
    if passing is not None:
        raise passing from None


def _passing(
    mw: Middleware, exc: BaseException, handler_error: BaseException | None, called: bool
) -> BaseException | None:
    """What a scope that raised ``exc`` passes on; None: the middleware's own error, logged."""
    if exc is handler_error:
        return exc
    if handler_error is not None:  # the middleware wrapped it: the original counts
        return handler_error
    if not isinstance(exc, Exception):
        return exc  # cancellation, exit: not the middleware's to swallow
    if isinstance(exc, Skip) and not called:
        return exc  # a middleware skipping the event on purpose (a duplicate)
    if isinstance(exc, TransientDependencyError):
        return exc  # what the middleware needs is down: the event is held, not run unguarded
    log.exception("middleware failed", middleware=type(mw).__name__)
    return None
