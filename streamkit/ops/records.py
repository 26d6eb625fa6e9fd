"""A read-only view of one dead-letter record and the streamkit headers it carries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from streamkit import envelope as env
from streamkit.codecs.json import JSON_ENVELOPE
from streamkit.errors import DecodeError, StreamkitError
from streamkit.ops.timeparse import iso

CODEC = JSON_ENVELOPE  # how dead letters are shown; their bytes are never re-encoded


class SchemaView(Protocol):
    """Shows schema-registry-encoded values (``codecs.registry_view.RegistryView``)."""

    def encoded(self, value: bytes | None) -> bool:
        """True when ``value`` is in the registry wire format."""
        ...

    def schema(self, value: bytes) -> dict[str, Any]:
        """``{"id", "type", "name"}`` of the value's schema."""
        ...

    def describe(self, value: bytes) -> dict[str, Any]:
        """``{"schema", "data"}``: the schema and the decoded body."""
        ...

    def close(self) -> None:
        """Close the registry client's connections."""
        ...


def text(raw: bytes | None) -> str:
    """Bytes shown to people: UTF-8, undecodable bytes escaped, None as empty."""
    return "" if raw is None else raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record of a dead-letter topic, as it is on the broker."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: env.Headers

    @classmethod
    def from_message(cls, msg: Any) -> DeadLetter:
        """Wrap a consumed confluent-kafka message (no copies of key or value)."""
        return cls.of(msg, msg.headers() or [])

    @classmethod
    def of(cls, msg: Any, headers: env.Headers) -> DeadLetter:
        """:meth:`from_message` with the headers already read (a record's headers are read
        once: see ``consumer.dispatch.read_headers`` for what touching broken ones does)."""
        return cls(
            msg.topic(),
            msg.partition(),
            msg.offset(),
            msg.timestamp()[1],
            msg.key(),
            msg.value(),
            headers,
        )

    @property
    def position(self) -> str:
        """``topic/partition/offset``: where this record is."""
        return f"{self.topic}/{self.partition}/{self.offset}"

    def header(self, name: str) -> str | None:
        """Header ``name`` as text, or None."""
        return env.header_str(self.headers, name)

    def event_type(self, view: SchemaView | None = None) -> str | None:
        """The ``event_type`` header, else the envelope's field (bare payloads: None);
        with ``view``, a registry-encoded record's schema name."""
        found = self.header(env.HEADER_EVENT_TYPE)
        if found is not None or not self.value:
            return found
        if view is not None and view.encoded(self.value):
            try:
                name: str | None = view.schema(self.value)["name"]
            except StreamkitError:  # the registry is down or does not know the id
                return None
            return name
        try:
            return CODEC.route(self.value)[0]  # the codec that owns the wire format
        except DecodeError:
            return None

    def error_type(self) -> str | None:
        """The exception class that sent the record here."""
        return self.header(env.H_ERROR_TYPE)

    def attempt(self) -> int | None:
        """The attempt that failed last."""
        return env.header_int(self.headers, env.H_ATTEMPT)

    def summary(self, view: SchemaView | None = None) -> dict[str, Any]:
        """The fields ``dlq list`` shows, JSON-ready (``view``: see :meth:`event_type`)."""
        return {
            "timestamp": iso(self.timestamp_ms),
            "partition": self.partition,
            "offset": self.offset,
            "key": None if self.key is None else text(self.key),
            "event_type": self.event_type(view),
            "error_type": self.error_type(),
            "error_message": self.header(env.H_ERROR_MESSAGE),
            "attempt": self.attempt(),
            "original_topic": self.header(env.H_ORIGINAL_TOPIC),
            "group": self.header(env.H_GROUP),
        }

    def details(self, view: SchemaView | None = None) -> dict[str, Any]:
        """Everything ``dlq show`` shows: all headers, the traceback, the decoded payload.

        With ``view``, a registry-encoded value is decoded with its schema, and
        ``schema`` tells its id, type and name (or why it could not be decoded).
        """
        payload, schema = self._payload(view)
        extra = {} if schema is None else {"schema": schema}
        return {
            "topic": self.topic,
            **self.summary(view),
            **extra,
            "timestamp_ms": self.timestamp_ms,
            "headers": [[k, None if v is None else text(v)] for k, v in self.headers],
            "traceback": self.header(env.H_ERROR_TRACEBACK),
            "payload": payload,
            "payload_is_json": self.value is not None and not isinstance(payload, str),
        }

    def _payload(self, view: SchemaView | None) -> tuple[Any, dict[str, Any] | None]:
        value = self.value
        if value is None:
            return None, None
        if view is not None and view.encoded(value):
            try:
                shown = view.describe(value)
            except StreamkitError as exc:  # registry down, unknown id, body not matching
                return text(value), {"id": int.from_bytes(value[1:5], "big"), "error": str(exc)}
            return shown["data"], shown["schema"]
        try:
            return CODEC.describe(value), None
        except DecodeError:
            return text(value), None
