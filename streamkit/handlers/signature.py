"""Handler signature introspection: what the first parameter asks for.

Everything here runs once, at registration, so a signature streamkit cannot serve fails at
import time with the function's name in the message, never mid-stream.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from streamkit.codecs.base import Target
from streamkit.envelope import Event
from streamkit.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Signature:
    """What a handler receives."""

    target: Target
    wants_ctx: bool
    is_async: bool


def describe(fn: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, for error messages."""
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def inspect_handler(fn: Callable[..., Any]) -> Signature:
    """Read a handler's signature; raise :class:`ConfigError` naming it if unusable."""
    from streamkit.handlers.context import Context

    if not callable(fn):
        raise ConfigError(f"handler {fn!r} is not callable")
    params = list(inspect.signature(fn).parameters.values())
    if not params or len(params) > 2:
        raise ConfigError(
            f"handler {describe(fn)} must take (event) or (event, ctx), got {len(params)} params"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # a forward reference that cannot be resolved
        raise ConfigError(f"handler {describe(fn)}: cannot resolve annotations: {exc}") from exc
    target = _payload_target(fn, hints.get(params[0].name, inspect.Parameter.empty))
    wants_ctx = len(params) == 2
    if wants_ctx and hints.get(params[1].name, Context) is not Context:
        raise ConfigError(f"handler {describe(fn)}: second parameter must be annotated Context")
    return Signature(target, wants_ctx, inspect.iscoroutinefunction(fn))


def _payload_target(fn: Callable[..., Any], annotation: Any) -> Target:
    if annotation is inspect.Parameter.empty:
        raise ConfigError(
            f"handler {describe(fn)}: missing type annotation on its first parameter "
            "(a pydantic model, dict, bytes or streamkit.Event)"
        )
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return Target("model", annotation)
    origin = typing.get_origin(annotation) or annotation
    if origin is dict:
        return Target("dict")
    if annotation is bytes:
        return Target("bytes")
    if annotation is Event:
        return Target("event")
    raise ConfigError(
        f"handler {describe(fn)}: first parameter must be annotated with a pydantic model, "
        f"dict, bytes or streamkit.Event, got {annotation!r}"
    )
