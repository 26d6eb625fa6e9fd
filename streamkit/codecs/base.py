"""The codec seam: one object turns a record's value into an event and an event into bytes.

A codec is chosen per router (``Router(codec=...)``) and may be overridden per handler
(``@handler(..., codec=...)``). It has three jobs, each done once per record:

- ``route(value)``: the event type carried *in the value*, for records without an
  ``event_type`` header, plus whatever it parsed on the way (handed to the decoder, so a
  value is never parsed twice);
- ``decoder(target)``: built once at registration, turns a value into what the handler's
  first parameter asks for (a pydantic model, a dict, bytes, an :class:`~streamkit.Event`),
  raising :class:`~streamkit.DecodeError` / :class:`~streamkit.SchemaError` with the raw bytes;
- ``encode(event_type, data, event_id=...)``: the value of a published event.

``describe(value)`` gives operator tools (``streamkit dlq show``) a JSON-able view.
A new wire format is one new module with one class that has these methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

from pydantic import BaseModel

from streamkit.envelope import HEADER_EVENT_ID, HEADER_EVENT_TYPE
from streamkit.record import Headers, OutgoingRecord, as_key

Kind = Literal["model", "dict", "bytes", "event"]

NOT_PARSED: Final[Any] = object()
"""``route`` did not parse the value: the decoder must parse it itself."""

# A decoder takes the raw value and what ``route`` parsed (or NOT_PARSED) and returns
# (the payload for the handler, the event id or None).
Decoder = Callable[[bytes, Any], tuple[Any, str | None]]


@dataclass(frozen=True, slots=True)
class Target:
    """What a handler's first parameter asks for."""

    kind: Kind
    model: type[BaseModel] | None = None


class Codec(Protocol):
    """Turns record values into events for handlers, and events into record values."""

    family: str
    """Codecs of one family parse values alike: what one's ``route`` parsed, another's
    decoder can use."""

    def route(self, value: bytes) -> tuple[str | None, Any]:
        """The event type in ``value`` (None when it has none) and what was parsed."""
        ...

    def decoder(self, target: Target) -> Decoder:
        """The decoder for handlers whose first parameter is ``target``."""
        ...

    def encode(self, event_type: str, data: Any, *, event_id: str) -> bytes:
        """The record value of one published event."""
        ...

    def describe(self, value: bytes) -> Any:
        """A JSON-able view of ``value`` for people; raise DecodeError if it is not one."""
        ...


def event_record(
    codec: Codec,
    topic: str,
    event_type: str,
    data: Any,
    *,
    key: str | bytes | None = None,
    headers: Headers | None = None,
    event_id: str,
) -> OutgoingRecord:
    """The record of one published event: value from ``codec``, type and id in headers.

    The ``event_type`` header is written for every codec, so consumers route without
    decoding the value (wire contract).
    """
    all_headers: Headers = [
        (HEADER_EVENT_TYPE, event_type.encode()),
        (HEADER_EVENT_ID, event_id.encode()),
    ]
    if headers:
        all_headers.extend(headers)
    # A codec whose value depends on the topic (a schema registry's topic subject
    # strategies) has ``encode_to``; the others need only the event.
    encode_to = getattr(codec, "encode_to", None)
    if encode_to is not None:
        value = encode_to(topic, event_type, data, event_id=event_id)
    else:
        value = codec.encode(event_type, data, event_id=event_id)
    return OutgoingRecord(
        topic, value, key=as_key(key), headers=all_headers, kind="event", event_type=event_type
    )
