"""Middleware: a scope around every handler call, and a hook on every record sent.

``handle(ctx, call_next)`` runs around the handler -- sync, async and ``blocking=True``
alike -- in the event's own ``contextvars`` context, which reaches the handler even when it
runs in a thread: a contextvar set before ``await call_next()`` is visible inside the
handler.

``handle_sync(ctx, call_next)`` is the same scope for plain sync handlers, run on the spot
with no task and no coroutine (a task per event costs more than most handlers). A
middleware that only overrides the simple hooks has both already; one that overrides
``handle`` should override ``handle_sync`` too, or every sync handler under it runs as a
task (correct, just slower).

``before_publish`` sees every outgoing record (``ctx.publish``, retry-tier and dead-letter
records) and may add headers. ``ctx.state`` is a per-event dict for what a
middleware wants to carry from its scope to its publish hook.

Middleware never crashes the worker: an exception of a middleware's own is logged and the
event goes on (the handler still runs); the handler's exception passes through unchanged.
A middleware that raises :class:`~streamkit.errors.Skip` before calling the handler skips
the event on purpose (counted ``skipped``, offset committed): how a duplicate is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamkit.handlers.context import Context
    from streamkit.record import OutgoingRecord

CallNext = Callable[[], Awaitable[None]]
CallNextSync = Callable[[], None]


class Middleware:
    """Base class; override :meth:`handle` for a scope, or the simple hooks.

    ``sync_scope``: set it False on an instance whose :meth:`handle_sync` cannot serve
    (e.g. it wraps a store that needs I/O); sync handlers then run as tasks under it.

    The default :meth:`handle` calls :meth:`before_handle`, the handler, then
    :meth:`after_handle` with the error (or None) and the duration in seconds.
    """

    sync_scope: bool = True

    async def handle(self, ctx: Context, call_next: CallNext) -> None:
        """The scope around one handler call: ``await call_next()`` runs the handler."""
        self.before_handle(ctx)
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            await call_next()
        except Exception as exc:
            error = exc
            raise
        finally:
            self.after_handle(ctx, error, time.perf_counter() - started)

    def handle_sync(self, ctx: Context, call_next: CallNextSync) -> None:
        """The scope around one plain sync handler call: ``call_next()`` runs it."""
        self.before_handle(ctx)
        error: BaseException | None = None
        started = time.perf_counter()
        try:
            call_next()
        except Exception as exc:
            error = exc
            raise
        finally:
            self.after_handle(ctx, error, time.perf_counter() - started)

    def bind(self, metrics: Any, group: str) -> None:
        """Called once when a worker (or ``TestBroker``) starts, with its
        :class:`~streamkit.observability.metrics.Metrics` and consumer group: for
        middleware that counts (and primes its series)."""

    async def close(self) -> None:
        """Called once when the worker (or ``TestBroker``) stops, after the drain: release
        what the middleware holds (a store's connections)."""

    def before_handle(self, ctx: Context) -> None:
        """Called before the handler runs (by the default :meth:`handle`)."""

    def after_handle(self, ctx: Context, error: BaseException | None, duration: float) -> None:
        """Called after the handler returned (``error`` None) or raised; duration in seconds."""

    def before_publish(self, record: OutgoingRecord, ctx: Context | None) -> None:
        """Called for every record about to be sent; may change ``record.headers``.

        ``ctx`` is the event being handled (None for records sent outside a handler).
        """
