"""The JSON Schema codec: Confluent-wire-format JSON with a schema registry.

A model's schema is ``model.model_json_schema()``; records are routed by its ``title``
(pydantic's default title is the class name).
"""

from __future__ import annotations

from typing import Any

import orjson
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from pydantic import BaseModel

from streamkit.codecs.registry import Deserialize, RegistryCodec, Serialize


class JsonSchemaCodec(RegistryCodec):
    """JSON records validated against JSON Schemas in a registry (options: RegistryCodec)."""

    format_name = "JSON"

    def schema_of(self, model: type[BaseModel]) -> str:
        """``model.model_json_schema()`` as text."""
        return orjson.dumps(model.model_json_schema()).decode()

    def schema_name(self, schema: str) -> str | None:
        """The schema's ``title``."""
        try:
            parsed = orjson.loads(schema)
        except orjson.JSONDecodeError:
            return None
        title = parsed.get("title") if isinstance(parsed, dict) else None
        return title if isinstance(title, str) and title else None

    def make_serializer(self, model: type[BaseModel]) -> Serialize:
        """A ``JSONSerializer`` of ``model``'s schema (JSON-mode dump: ISO datetimes)."""
        return JSONSerializer(  # type: ignore[no-any-return]
            self.schema_of(model),
            self.client,
            to_dict=lambda obj, ctx: obj.model_dump(mode="json"),
            conf=self.serializer_conf(),
        )

    def make_deserializer(self) -> Deserialize:
        """A ``JSONDeserializer`` validating each body against its writer schema."""
        deserializer: Any = JSONDeserializer(
            None, schema_registry_client=self.client, conf=self.deserializer_conf()
        )
        return deserializer  # type: ignore[no-any-return]
