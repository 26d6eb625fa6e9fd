"""Handler signature introspection: what the first parameter asks for, and a decoder for it.

Everything here runs once, at registration, so a signature streamkit cannot serve fails at
import time with the function's name in the message, never mid-stream.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError, create_model

from streamkit.envelope import Event, loads
from streamkit.errors import ConfigError, DecodeError, SchemaError

Kind = Literal["model", "dict", "bytes", "event"]
# A decoder takes the raw value and, when routing already parsed it, the parsed object, and
# returns (payload for the handler, event id or None).
Decoder = Callable[[bytes, Any], tuple[Any, str | None]]

_NOT_PARSED: Any = object()


@dataclass(frozen=True, slots=True)
class Signature:
    """What a handler receives."""

    kind: Kind
    model: type[BaseModel] | None
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
    kind, model = _payload_kind(fn, hints.get(params[0].name, inspect.Parameter.empty))
    wants_ctx = len(params) == 2
    if wants_ctx and hints.get(params[1].name, Context) is not Context:
        raise ConfigError(f"handler {describe(fn)}: second parameter must be annotated Context")
    return Signature(kind, model, wants_ctx, inspect.iscoroutinefunction(fn))


def _payload_kind(fn: Callable[..., Any], annotation: Any) -> tuple[Kind, type[BaseModel] | None]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    origin = typing.get_origin(annotation) or annotation
    if origin is dict:
        return "dict", None
    if annotation is bytes:
        return "bytes", None
    if annotation is Event:
        return "event", None
    raise ConfigError(
        f"handler {describe(fn)}: first parameter must be annotated with a pydantic model, "
        f"dict, bytes or streamkit.Event, got {annotation!r}"
    )


def make_decoder(sig: Signature, *, envelope: bool) -> Decoder:
    """Build the one-pass decoder for a handler's payload kind."""
    if sig.kind == "bytes":
        return _decode_bytes
    if sig.kind == "model":
        assert sig.model is not None
        return _model_decoder(sig.model, envelope)
    if sig.kind == "dict":
        return _decode_dict_envelope if envelope else _decode_dict_bare
    return _decode_event_envelope if envelope else _decode_event_bare


def _decode_bytes(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    return value, None


def _raise_from(exc: ValidationError, value: bytes) -> typing.NoReturn:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        raise DecodeError(f"invalid JSON: {errors[0]['msg']}", raw=value) from None
    raise SchemaError(_summarise(exc), raw=value) from None


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:3]:
        loc = ".".join(str(p) for p in err["loc"]) or "<value>"
        parts.append(f"{loc}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _model_decoder(model: type[BaseModel], envelope: bool) -> Decoder:
    if not envelope:
        target: type[BaseModel] = model
    else:
        # A typed envelope lets pydantic parse and validate the whole record in one pass.
        target = create_model(
            f"Envelope[{model.__name__}]",
            event_id=(str, ...),
            event_type=(str, ...),
            occurred_at=(datetime, ...),
            data=(model, ...),
        )

    # The core validator directly: skips BaseModel's Python wrapper on the hot path.
    validate_json = target.__pydantic_validator__.validate_json
    validate_python = target.__pydantic_validator__.validate_python

    def decode(value: bytes, parsed: Any) -> tuple[Any, str | None]:
        try:
            obj = validate_json(value) if parsed is _NOT_PARSED else validate_python(parsed)
        except ValidationError as exc:
            _raise_from(exc, value)
        if envelope:
            return obj.data, obj.event_id
        return obj, None

    return decode


def _as_envelope(value: bytes, parsed: Any) -> dict[str, Any]:
    obj = loads(value) if parsed is _NOT_PARSED else parsed
    if not isinstance(obj, dict) or "data" not in obj or "event_id" not in obj:
        raise SchemaError("value is not an envelope (needs event_id, event_type, data)", raw=value)
    return obj


def _decode_dict_envelope(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    obj = _as_envelope(value, parsed)
    if not isinstance(obj["data"], dict):
        raise SchemaError("envelope data is not a JSON object", raw=value)
    return obj["data"], str(obj["event_id"])


def _decode_dict_bare(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    obj = loads(value) if parsed is _NOT_PARSED else parsed
    if not isinstance(obj, dict):
        raise SchemaError("value is not a JSON object", raw=value)
    return obj, None


def _decode_event_envelope(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    obj = _as_envelope(value, parsed)
    try:
        occurred = datetime.fromisoformat(str(obj.get("occurred_at")))
    except ValueError:
        raise SchemaError("occurred_at is not an ISO-8601 timestamp", raw=value) from None
    event = Event(str(obj["event_id"]), str(obj.get("event_type")), occurred, obj["data"])
    return event, event.event_id


def _decode_event_bare(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    data = loads(value) if parsed is _NOT_PARSED else parsed
    return Event("", "", datetime.now(UTC), data), None


NOT_PARSED = _NOT_PARSED
