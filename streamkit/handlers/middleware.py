"""Middleware: hooks around every handled event (logging, tracing, user code).

Hooks must never crash the worker: the runtime logs and swallows their exceptions.
"""

from __future__ import annotations

from streamkit.handlers.context import Context


class Middleware:
    """No-op base class; override the hooks you need."""

    def before_handle(self, ctx: Context) -> None:
        """Called before the handler runs."""

    def after_handle(self, ctx: Context, error: BaseException | None, duration: float) -> None:
        """Called after the handler returned (``error`` None) or raised; duration in seconds."""
