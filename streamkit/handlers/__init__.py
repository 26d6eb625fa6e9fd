"""Handler registry, the ``@handler`` decorator, context and middleware."""

from streamkit.handlers.context import Context
from streamkit.handlers.middleware import Middleware
from streamkit.handlers.registry import HandlerSpec, Router, default_router, handler

__all__ = ["Context", "HandlerSpec", "Middleware", "Router", "default_router", "handler"]
