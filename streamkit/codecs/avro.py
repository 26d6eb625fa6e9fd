"""The Avro codec: Confluent-wire-format Avro records with a schema registry.

The schema of a model: ``model.avro_schema()`` when it is a
``dataclasses_avroschema.pydantic.AvroBaseModel`` (namespace from its ``Meta``); a flat
plain pydantic model is converted the same way; or give the schema text per model with
``schemas={OrderCreated: Path("order.avsc").read_text()}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from pydantic import BaseModel

from streamkit.codecs.registry import Deserialize, RegistryCodec, Serialize
from streamkit.errors import ConfigError


class AvroCodec(RegistryCodec):
    """Avro records, schemas in a registry (see :class:`RegistryCodec` for the options)."""

    format_name = "AVRO"

    def __init__(
        self,
        registry: Any,
        *,
        schemas: Mapping[type[BaseModel], str] | None = None,
        **options: Any,
    ) -> None:
        self.schemas: dict[type[BaseModel], str] = dict(schemas or {})
        super().__init__(registry, **options)

    def schema_of(self, model: type[BaseModel]) -> str:
        """The Avro schema (JSON text) of ``model``."""
        given = self.schemas.get(model)
        if given is not None:
            return given
        schema = getattr(model, "avro_schema", None)
        if callable(schema):
            return str(schema())
        return _converted(model)

    def schema_name(self, schema: str) -> str | None:
        """The record's full name (``namespace.name``)."""
        try:
            parsed = orjson.loads(schema)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str):
            return None
        name: str = parsed["name"]
        namespace = parsed.get("namespace")
        return f"{namespace}.{name}" if namespace and "." not in name else name

    def make_serializer(self, model: type[BaseModel]) -> Serialize:
        """An ``AvroSerializer`` of ``model``'s schema (python-mode dump: datetimes stay)."""
        return AvroSerializer(  # type: ignore[no-any-return]
            self.client,
            self.schema_of(model),
            to_dict=lambda obj, ctx: obj.model_dump(),
            conf=self.serializer_conf(),
        )

    def make_deserializer(self) -> Deserialize:
        """An ``AvroDeserializer`` reading with the writer's schema."""
        return AvroDeserializer(self.client, conf=self.deserializer_conf())  # type: ignore[no-any-return]


def _converted(model: type[BaseModel]) -> str:
    """A plain model's schema, through a throwaway ``AvroBaseModel`` subclass."""
    try:
        from dataclasses_avroschema.pydantic import AvroBaseModel
    except ImportError:  # pragma: no cover - the extra is not installed
        raise ConfigError(
            "Avro schemas from models need `pip install 'streamkit[registry]'`"
        ) from None
    try:
        avro_model: Any = type(
            model.__name__, (model, AvroBaseModel), {"__module__": model.__module__}
        )
        return str(avro_model.avro_schema())
    except Exception as exc:
        raise ConfigError(
            f"no Avro schema for {model.__name__}: {exc}; inherit "
            "dataclasses_avroschema.pydantic.AvroBaseModel or pass schemas={model: '...avsc'}"
        ) from None
