"""Handler registry, the ``@handler`` decorator, context and middleware."""

from streamkit.handlers.context import Context
from streamkit.handlers.middleware import Middleware
from streamkit.handlers.registry import HandlerSpec, Router, configure, default_router, handler

__all__ = [
    "Context",
    "HandlerSpec",
    "Middleware",
    "Router",
    "configure",
    "default_router",
    "handler",
]
