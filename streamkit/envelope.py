"""The wire contract: the JSON envelope, its codec, and the header names streamkit writes.

Value: ``{"event_id", "event_type", "occurred_at", "data"}`` encoded with orjson. The
``event_type`` header is written too, so consumers can route without decoding the value
and so bare (non-envelope) payloads can be routed at all.

Header names below are part of the wire contract: never rename them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from streamkit.errors import DecodeError

HEADER_EVENT_TYPE = "event_type"
HEADER_EVENT_ID = "event_id"

# Retry/DLQ headers. "original-*" are written once, by the first failure, and kept as-is
# by every later tier so a record dead-lettered after N attempts still says where it began.
H_ATTEMPT = "streamkit-attempt"
H_NOT_BEFORE = "streamkit-not-before"  # epoch milliseconds
H_GROUP = "streamkit-group"
H_ERROR_TYPE = "streamkit-error-type"
H_ERROR_MESSAGE = "streamkit-error-message"
H_ERROR_TRACEBACK = "streamkit-error-traceback"
H_FAILED_AT = "streamkit-failed-at"  # epoch milliseconds
H_ORIGINAL_TOPIC = "streamkit-original-topic"
H_ORIGINAL_PARTITION = "streamkit-original-partition"
H_ORIGINAL_OFFSET = "streamkit-original-offset"
H_ORIGINAL_TIMESTAMP = "streamkit-original-timestamp"
H_REPLAYED_FROM = "streamkit-replayed-from"
H_REPLAYED_AT = "streamkit-replayed-at"

ORIGINAL_HEADERS = (H_ORIGINAL_TOPIC, H_ORIGINAL_PARTITION, H_ORIGINAL_OFFSET, H_ORIGINAL_TIMESTAMP)
FAILURE_HEADERS = (
    H_ATTEMPT,
    H_NOT_BEFORE,
    H_GROUP,
    H_ERROR_TYPE,
    H_ERROR_MESSAGE,
    H_ERROR_TRACEBACK,
    H_FAILED_AT,
)
STREAMKIT_HEADERS = frozenset(FAILURE_HEADERS + ORIGINAL_HEADERS + (H_REPLAYED_FROM, H_REPLAYED_AT))

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Event:
    """A decoded envelope, for handlers that want the whole of it."""

    event_id: str
    event_type: str
    occurred_at: datetime
    data: Any


def new_event_id() -> str:
    """A fresh, unique event id: a random (version 4) UUID in its usual text form.

    Its 122 random bits come from :mod:`random` (seeded from the OS at start and again in
    a forked child), not from ``uuid.uuid4``'s ``os.urandom``: an id must be unique, not
    unguessable, and that system call per published event let the client's threads take
    the GIL from the event loop each time (scenario 8 of the benchmark).
    """
    h = f"{_getrandbits(128) & _V4_MASK | _V4_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_getrandbits = random.getrandbits
_V4_BITS = (4 << 76) | (2 << 62)  # version 4, RFC 4122 variant
_V4_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)


def _default(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def encode_envelope(
    event_type: str,
    data: Any,
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> bytes:
    """Encode ``data`` (a pydantic model, dict or any JSON-able value) in the envelope."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    return orjson.dumps(
        {
            "event_id": event_id or new_event_id(),
            "event_type": event_type,
            "occurred_at": occurred_at or datetime.now(UTC),
            "data": data,
        },
        default=_default,
    )


def loads(value: bytes) -> Any:
    """Parse JSON with orjson, raising :class:`DecodeError` that keeps the raw bytes."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"invalid JSON: {exc}", raw=value) from None


def header_value(headers: Headers | None, name: str) -> bytes | None:
    """The last value of header ``name`` (Kafka allows repeats; the last one wins)."""
    if not headers:
        return None
    found = None
    for key, value in headers:
        if key == name:
            found = value
    return found


def header_str(headers: Headers | None, name: str) -> str | None:
    """Header ``name`` decoded as UTF-8, or None when absent or not text."""
    raw = header_value(headers, name)
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def header_int(headers: Headers | None, name: str) -> int | None:
    """Header ``name`` as an integer, or None when absent or malformed."""
    text = header_str(headers, name)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return None
