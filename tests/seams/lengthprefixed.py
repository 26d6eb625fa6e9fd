"""A test-only codec in one module: ``<u16 type length><event type><JSON payload>``.

It shows that a wire format is one new class on the codec seam: routing by a type inside
the value (no header), typed decoding for pydantic handlers, encoding for ``ctx.publish``.
"""

from __future__ import annotations

import struct
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from streamkit.codecs import Decoder, Target
from streamkit.errors import DecodeError, SchemaError


class LengthPrefixed:
    family = "length-prefixed"

    def route(self, value: bytes) -> tuple[str | None, Any]:
        event_type, body = _split(value)
        return event_type, body

    def decoder(self, target: Target) -> Decoder:
        def decode(value: bytes, parsed: Any) -> tuple[Any, str | None]:
            body = parsed if isinstance(parsed, bytes) else _split(value)[1]
            if target.kind == "bytes":
                return body, None
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                raise DecodeError(f"payload is not JSON: {exc}", raw=value) from None
            if target.model is None:
                return data, None
            try:
                return target.model.model_validate(data), None
            except ValidationError as exc:
                raise SchemaError(f"{exc.error_count()} validation errors", raw=value) from None

        return decode

    def encode(self, event_type: str, data: Any, *, event_id: str) -> bytes:
        if isinstance(data, BaseModel):
            data = data.model_dump(mode="json")
        name = event_type.encode()
        return struct.pack(">H", len(name)) + name + orjson.dumps(data)

    def describe(self, value: bytes) -> Any:
        event_type, body = _split(value)
        return {"event_type": event_type, "data": orjson.loads(body)}


def _split(value: bytes) -> tuple[str, bytes]:
    if len(value) < 2:
        raise DecodeError("shorter than its length prefix", raw=value)
    (size,) = struct.unpack_from(">H", value)
    if len(value) < 2 + size:
        raise DecodeError("event type longer than the record", raw=value)
    try:
        return value[2 : 2 + size].decode(), value[2 + size :]
    except UnicodeDecodeError:
        raise DecodeError("event type is not UTF-8", raw=value) from None
