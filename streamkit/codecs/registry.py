"""What the schema-registry codecs share: the client, routing by schema name, error mapping.

Records are in the Confluent wire format (magic byte 0, a 4-byte schema id, the body),
written and read by confluent-kafka's ``schema_registry`` serializers; this module never
parses a body itself. Install with ``pip install 'streamkit[registry]'``.

Routing (documented in the README): the ``event_type`` header first; else the record's
schema name -- the Avro record's full name (``namespace.name``) or the JSON Schema's
``title`` -- through ``names=`` (schema name -> event type), then through ``models=`` (each
model's own schema name -> its event type), else the schema name itself is the event type
(``@handler("com.acme.OrderCreated")``).

Errors: a record not in the wire format, an unknown schema id, a body that does not match
its schema, a model validation failure are bad input (:class:`DecodeError` /
:class:`SchemaError`, the DLQ). The registry not answering (refused, timed out, 5xx/429)
is :class:`RegistryUnavailableError`, a :class:`TransientDecodeError`: the record is held
in place (offset not committed, never dead-lettered) and decoded again with backoff
(``streamkit/consumer/hold.py``). Schemas are cached by id, so known schemas keep flowing
while the registry is down; only records with a schema id never seen before wait.
"""

from __future__ import annotations

import threading
import time
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from confluent_kafka.schema_registry import (
    SchemaRegistryClient,
    SchemaRegistryError,
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
    topic_subject_name_strategy,
)
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.serialization import MessageField, SerializationContext
from pydantic import BaseModel, ValidationError

from streamkit.codecs.base import NOT_PARSED, Decoder, Target
from streamkit.codecs.json import summarise
from streamkit.envelope import Event
from streamkit.errors import ConfigError, DecodeError, SchemaError, TransientDecodeError

SubjectStrategy = Literal["topic", "record", "topic-record"]
_STRATEGIES: dict[str, Callable[..., str | None]] = {
    "topic": topic_subject_name_strategy,
    "record": record_subject_name_strategy,
    "topic-record": topic_record_subject_name_strategy,
}
Serialize = Callable[[Any, SerializationContext], bytes]
Deserialize = Callable[[bytes, SerializationContext | None], Any]
MAGIC = 0


def _no_subject(ctx: Any, record_name: Any) -> None:
    return None


class RegistryUnavailableError(TransientDecodeError):
    """The schema registry did not answer (refused, timed out, 5xx, 429): the event is
    held and decoded again once it answers (never dead-lettered)."""

    dependency = "schema-registry"


def registry_client(registry: str | Mapping[str, Any] | SchemaRegistryClient) -> Any:
    """A client for ``registry`` (URL, client config or a client).

    Defaults bound a call: 5 s timeout and one retry, because a record with an unseen
    schema id is decoded on the event loop; a longer wait is the retry tier's job.
    """
    if isinstance(registry, SchemaRegistryClient):
        return registry
    conf: dict[str, Any] = {"url": registry} if isinstance(registry, str) else dict(registry)
    conf.setdefault("timeout", 5)
    conf.setdefault("max.retries", 1)
    conf.setdefault("retries.wait.ms", 200)
    return SchemaRegistryClient(conf)


def schema_id_of(value: bytes) -> int:
    """The schema id of a wire-format value; DecodeError when it is not one."""
    if len(value) < 6 or value[0] != MAGIC:
        raise DecodeError(
            "not in the schema registry wire format (magic byte 0 + 4-byte schema id)",
            raw=value,
        )
    return int.from_bytes(value[1:5], "big")


def registry_call(what: str, value: bytes | None, call: Callable[[], Any]) -> Any:
    """Run one registry call; map its failures to streamkit's error tree."""
    try:
        return call()
    except httpx.TransportError as exc:
        raise RegistryUnavailableError(f"schema registry unreachable ({what}): {exc}") from None
    except SchemaRegistryError as exc:
        status = exc.http_status_code
        if status == 404 and value is not None:
            raise SchemaError(
                f"{what}: not in the registry ({exc.error_message})", raw=value
            ) from None
        if status >= 500 or status in (408, 429) or status < 0:
            raise RegistryUnavailableError(f"schema registry failed ({what}): {exc}") from None
        raise ConfigError(f"schema registry refused {what}: {exc}") from None


FAIL_FAST_S = 1.0  # after the registry did not answer, unseen schemas fail at once this long


class FailFast:
    """After the registry did not answer, calls fail at once for :data:`FAIL_FAST_S`.

    Unseen schemas are fetched on the event loop: a *slow* registry (each call waiting
    for the client's timeout) must cost one wait, not one per record that needs it.
    Records failed fast are held like the others and tried again with backoff.
    """

    __slots__ = ("until", "why")

    def __init__(self) -> None:
        self.until = 0.0
        self.why = ""

    def call(self, what: str, value: bytes | None, fn: Callable[[], Any]) -> Any:
        """:func:`registry_call`, or RegistryUnavailableError at once within the window."""
        if time.monotonic() < self.until:
            raise RegistryUnavailableError(f"{self.why} (not asked again for {FAIL_FAST_S:g} s)")
        try:
            return registry_call(what, value, fn)
        except RegistryUnavailableError as exc:
            self.until, self.why = time.monotonic() + FAIL_FAST_S, str(exc)
            raise


class RegistryCodec:
    """The shared part of :class:`AvroCodec` and :class:`JsonSchemaCodec`.

    ``registry``: URL (``http://127.0.0.1:8081``), client config dict, or a
    ``SchemaRegistryClient``. ``models``: event type -> pydantic model, the schemas used
    to publish dicts and to route by schema name. ``names``: schema name -> event type for
    schemas whose names differ from your models'. ``auto_register``: register a model's
    schema on first publish (else it must be registered: ``streamkit schemas register``).
    ``subject_strategy``: ``"topic"`` (``<topic>-value``, one type per topic),
    ``"record"`` (``<record name>``) or ``"topic-record"`` (``<topic>-<record name>``).
    """

    family = "schema-registry"
    format_name = ""

    def __init__(
        self,
        registry: str | Mapping[str, Any] | SchemaRegistryClient,
        *,
        models: Mapping[str, type[BaseModel]] | None = None,
        names: Mapping[str, str] | None = None,
        auto_register: bool = True,
        subject_strategy: SubjectStrategy = "topic",
    ) -> None:
        if subject_strategy not in _STRATEGIES:
            raise ConfigError(
                f"subject_strategy must be one of {', '.join(_STRATEGIES)}, "
                f"got {subject_strategy!r}"
            )
        self._owns_client = not isinstance(registry, SchemaRegistryClient)
        self.client = registry_client(registry)
        self.models: dict[str, type[BaseModel]] = dict(models or {})
        self.auto_register = auto_register
        self.subject_strategy = subject_strategy
        self.names: dict[str, str] = {}  # schema name -> event type
        for event_type, model in self.models.items():
            name = self.schema_name(self.schema_of(model))
            if name:
                self.names[name] = event_type
        self.names.update(names or {})
        self._by_id: dict[int, str | None] = {}  # schema id -> event type (None: no name)
        self._decoded: set[int] = set()  # schema ids whose schema the deserializer has
        self._fail_fast = FailFast()
        self._serializers: dict[type[BaseModel], Serialize] = {}
        self._lock = threading.Lock()  # ctx.publish may run in handler threads
        self._deserialize = self.make_deserializer()

    # -- what a format provides ---------------------------------------------------------

    def schema_of(self, model: type[BaseModel]) -> str:
        """The schema text of ``model`` in this format."""
        raise NotImplementedError

    def schema_name(self, schema: str) -> str | None:
        """The name a schema gives its records (Avro full name, JSON Schema title)."""
        raise NotImplementedError

    def make_serializer(self, model: type[BaseModel]) -> Serialize:
        """confluent-kafka's serializer for ``model``'s schema."""
        raise NotImplementedError

    def make_deserializer(self) -> Deserialize:
        """confluent-kafka's deserializer (writer schema from the registry, by id)."""
        raise NotImplementedError

    def deserializer_conf(self) -> dict[str, Any]:
        """Deserializer settings: the writer's schema by id, no subject lookups.

        confluent-kafka's default strategy may ask the registry for a subject per record;
        a record's schema id is all we need, and it is cached.
        """
        return {"subject.name.strategy": _no_subject}

    def serializer_conf(self) -> dict[str, Any]:
        """Serializer settings: auto-registration and the subject name strategy."""
        return {
            "auto.register.schemas": self.auto_register,
            "use.latest.version": False,
            "subject.name.strategy": _STRATEGIES[self.subject_strategy],
        }

    # -- the codec seam ------------------------------------------------------------------

    def route(self, value: bytes) -> tuple[str | None, Any]:
        """The event type of the record's schema name (fetched once per schema id)."""
        schema_id = schema_id_of(value)
        try:
            return self._by_id[schema_id], NOT_PARSED
        except KeyError:
            pass
        schema = self._fail_fast.call(
            f"schema id {schema_id}", value, lambda: self.client.get_schema(schema_id)
        )
        name = self.schema_name(schema.schema_str)
        event_type = self.names.get(name, name) if name else None
        self._by_id[schema_id] = event_type
        return event_type, NOT_PARSED

    def decoder(self, target: Target) -> Decoder:
        """Body -> dict with the writer schema, then the handler's model validates it."""
        deserialize = self._deserialize
        model = target.model

        def decode(value: bytes, parsed: Any) -> tuple[Any, str | None]:
            if target.kind == "bytes":
                return value, None
            obj = self._body(deserialize, value)
            if model is not None:
                try:
                    return model.__pydantic_validator__.validate_python(obj), None
                except ValidationError as exc:
                    raise SchemaError(summarise(exc), raw=value) from None
            if target.kind == "event":
                return Event("", "", datetime.now(UTC), obj), None
            if not isinstance(obj, dict):
                raise SchemaError("record body is not an object", raw=value)
            return obj, None

        return decode

    def encode(self, event_type: str, data: Any, *, event_id: str) -> bytes:
        """See :meth:`encode_to`; without a topic (``record`` strategy only)."""
        return self.encode_to("", event_type, data, event_id=event_id)

    def encode_to(self, topic: str, event_type: str, data: Any, *, event_id: str) -> bytes:
        """``data`` (a model, or a dict of a type in ``models``) in the wire format."""
        if not topic and self.subject_strategy != "record":
            raise ConfigError(f"{self!r}: publishing needs a topic for the subject name")
        model = self._model_for(event_type, data)
        obj = data if isinstance(data, model) else model.model_validate(data)
        serialize = self._serializer(model)
        ctx = SerializationContext(topic, MessageField.VALUE)
        return typing.cast(
            bytes,
            registry_call(f"register/look up {model.__name__}", None, lambda: serialize(obj, ctx)),
        )

    def describe(self, value: bytes) -> Any:
        """``{"schema_id", "data"}`` for operator tools."""
        schema_id = schema_id_of(value)
        return {"schema_id": schema_id, "data": self._body(self._deserialize, value)}

    def subject_for(self, topic: str, model: type[BaseModel]) -> str:
        """The subject ``model``'s schema is registered under for ``topic``."""
        name = self.schema_name(self.schema_of(model))
        subject = _STRATEGIES[self.subject_strategy](
            SerializationContext(topic, MessageField.VALUE), name
        )
        return str(subject)

    # -- internals -----------------------------------------------------------------------

    def _body(self, deserialize: Deserialize, value: bytes) -> Any:
        schema_id = schema_id_of(value)
        what = f"schema id {schema_id}"
        try:
            if schema_id in self._decoded:  # its schema is cached: no registry call
                return registry_call(what, value, lambda: deserialize(value, None))
            body = self._fail_fast.call(what, value, lambda: deserialize(value, None))
            self._decoded.add(schema_id)
            return body
        except (RegistryUnavailableError, SchemaError, ConfigError):
            raise
        except Exception as exc:  # the body does not match its schema: bad input
            raise DecodeError(
                f"body does not match schema id {schema_id}: {type(exc).__name__}: {exc}", raw=value
            ) from None

    def _model_for(self, event_type: str, data: Any) -> type[BaseModel]:
        if isinstance(data, BaseModel):
            return type(data)
        model = self.models.get(event_type)
        if model is None:
            raise ConfigError(
                f"cannot publish {event_type!r} with {self!r}: pass a pydantic model, "
                f"or map the event type in models="
            )
        return model

    def _serializer(self, model: type[BaseModel]) -> Serialize:
        found = self._serializers.get(model)
        if found is None:
            with self._lock:
                found = self._serializers.get(model) or self.make_serializer(model)
                self._serializers[model] = found
        return found

    def close(self) -> None:
        """Close the registry client's connections (when this codec created the client)."""
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(subject_strategy={self.subject_strategy!r})"
