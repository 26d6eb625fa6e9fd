"""Routing: which handler takes a record, and its decoded payload.

Order: a topic handler of the record's (source) topic takes everything; else the
``event_type`` header, else the type the router's codec finds in the value; the handler of
that type, else the catch-all (``"*"``), else ``on_unknown``.

A :class:`~streamkit.errors.TransientDecodeError` (the schema registry did not answer) is
not bad input: the record is handed to a stand-in handler that raises it, so it is held in
place (consumer/hold.py) and routed and decoded again once the service answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.codecs.base import NOT_PARSED
from streamkit.envelope import HEADER_EVENT_TYPE, header_str
from streamkit.errors import DecodeError, TransientDecodeError, UnknownEventType
from streamkit.record import Headers, Record

if TYPE_CHECKING:
    from streamkit.handlers.registry import HandlerSpec, Router

CATCH_ALL = "*"  # @handler("*"): events of types no other handler claims
# The ``event_type`` metric label of events no handler claims: one constant instead of the
# raw header keeps a producer bug from creating unbounded series.
UNKNOWN_EVENT_TYPE = "__unknown__"

Resolved = tuple["HandlerSpec", str, Any, str | None]  # handler, event type, payload, id


def resolve(
    router: Router, record: Record, headers: Headers | None, source: str | None
) -> Resolved | None:
    """See :meth:`Router.resolve`."""
    value = record.value()
    if not value:
        raise DecodeError("null value (tombstone)" if value is None else "empty value", raw=value)
    event_type = header_str(headers, HEADER_EVENT_TYPE)
    if source is not None:
        by_topic = router.for_topic(source)
        if by_topic is not None:  # a foreign topic: no type needed, nothing parsed twice
            return _decode(router, by_topic, event_type or by_topic.event_type, value, NOT_PARSED)
    parsed: Any = NOT_PARSED
    if event_type is None:
        try:
            event_type, parsed = router.codec.route(value)
        except TransientDecodeError as exc:
            return router.deferred(None, exc), UNKNOWN_EVENT_TYPE, None, None
    spec = router.get(event_type) if event_type is not None else None
    if spec is None:
        spec = router.get(CATCH_ALL)
        if spec is None:
            _unclaimed(router, event_type, value)  # raises, unless told to skip
            return None
    if parsed is not NOT_PARSED and spec.codec.family != router.codec.family:
        parsed = NOT_PARSED  # parsed as another format: the handler's codec parses it
    return _decode(router, spec, event_type or "", value, parsed)


def _decode(
    router: Router, spec: HandlerSpec, event_type: str, value: bytes, parsed: Any
) -> Resolved:
    try:
        payload, event_id = spec.decode(value, parsed)
    except TransientDecodeError as exc:
        return router.deferred(spec, exc), event_type, None, None
    return spec, event_type, payload, event_id


def _unclaimed(router: Router, event_type: str | None, value: bytes) -> None:
    if event_type is None:
        raise UnknownEventType("record has no event_type header or field", raw=value)
    if router.on_unknown != "skip":
        raise UnknownEventType(f"no handler for event type {event_type!r}", raw=value)
