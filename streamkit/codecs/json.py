"""JSON codecs (orjson): the streamkit envelope (default) and bare JSON payloads.

Envelope value: ``{"event_id", "event_type", "occurred_at", "data"}``. Bare: the payload
alone, routed by the ``event_type`` header (``@handler(..., envelope=False)``).
"""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError, create_model

from streamkit.codecs.base import NOT_PARSED, Decoder, Target
from streamkit.envelope import Event, encode_envelope, loads
from streamkit.errors import DecodeError, SchemaError


class JsonEnvelope:
    """The streamkit JSON envelope; the default codec."""

    family = "json"

    def route(self, value: bytes) -> tuple[str | None, Any]:
        """The envelope's ``event_type`` field; the parsed value goes to the decoder."""
        parsed = loads(value)
        event_type = parsed.get("event_type") if isinstance(parsed, dict) else None
        return (event_type if isinstance(event_type, str) and event_type else None), parsed

    def decoder(self, target: Target) -> Decoder:
        """One-pass decoders per payload kind (a model validates the whole envelope)."""
        if target.kind == "model":
            assert target.model is not None
            return _model_decoder(target.model, envelope=True)
        return {
            "bytes": _decode_bytes,
            "dict": _decode_dict_envelope,
            "event": _decode_event_envelope,
        }[target.kind]

    def encode(self, event_type: str, data: Any, *, event_id: str) -> bytes:
        """``data`` (a pydantic model or JSON-able value) in an envelope."""
        return encode_envelope(event_type, data, event_id=event_id)

    def describe(self, value: bytes) -> Any:
        """The parsed JSON."""
        return loads(value)

    def __repr__(self) -> str:
        return "JsonEnvelope()"


class BareJson:
    """JSON payloads without an envelope, routed by the ``event_type`` header."""

    family = "json"

    def route(self, value: bytes) -> tuple[str | None, Any]:
        """A bare payload carries no event type."""
        return None, NOT_PARSED

    def decoder(self, target: Target) -> Decoder:
        """Decoders of the payload itself."""
        if target.kind == "model":
            assert target.model is not None
            return _model_decoder(target.model, envelope=False)
        return {
            "bytes": _decode_bytes,
            "dict": _decode_dict_bare,
            "event": _decode_event_bare,
        }[target.kind]

    def encode(self, event_type: str, data: Any, *, event_id: str) -> bytes:
        """``data`` as JSON (the type and id travel in headers)."""
        if isinstance(data, BaseModel):
            return data.__pydantic_serializer__.to_json(data)
        try:
            return orjson.dumps(data)
        except TypeError as exc:
            raise TypeError(f"cannot encode {type(data).__name__} as JSON: {exc}") from None

    def describe(self, value: bytes) -> Any:
        """The parsed JSON."""
        return loads(value)

    def __repr__(self) -> str:
        return "BareJson()"


JSON_ENVELOPE = JsonEnvelope()
BARE_JSON = BareJson()


def _decode_bytes(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    return value, None


def _raise_from(exc: ValidationError, value: bytes) -> typing.NoReturn:
    errors = exc.errors(include_url=False)
    if errors and errors[0]["type"] == "json_invalid":
        raise DecodeError(f"invalid JSON: {errors[0]['msg']}", raw=value) from None
    raise SchemaError(summarise(exc), raw=value) from None


def summarise(exc: ValidationError) -> str:
    """The first three errors of ``exc``: locations and messages, never input values."""
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
            obj = validate_json(value) if parsed is NOT_PARSED else validate_python(parsed)
        except ValidationError as exc:
            _raise_from(exc, value)
        if envelope:
            return obj.data, obj.event_id
        return obj, None

    return decode


def _as_envelope(value: bytes, parsed: Any) -> dict[str, Any]:
    obj = loads(value) if parsed is NOT_PARSED else parsed
    if not isinstance(obj, dict) or "data" not in obj or "event_id" not in obj:
        raise SchemaError("value is not an envelope (needs event_id, event_type, data)", raw=value)
    return obj


def _decode_dict_envelope(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    obj = _as_envelope(value, parsed)
    if not isinstance(obj["data"], dict):
        raise SchemaError("envelope data is not a JSON object", raw=value)
    return obj["data"], str(obj["event_id"])


def _decode_dict_bare(value: bytes, parsed: Any) -> tuple[Any, str | None]:
    obj = loads(value) if parsed is NOT_PARSED else parsed
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
    data = loads(value) if parsed is NOT_PARSED else parsed
    return Event("", "", datetime.now(UTC), data), None
