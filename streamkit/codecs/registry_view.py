"""Registry-encoded records for people: schema id, type, record name and the decoded body.

Operator tools (``streamkit dlq show``, ``streamkit replay --dry-run``) meet records of any
schema type without the service's models. :class:`RegistryView` looks a record's schema up
by id (cached), decodes the body with the matching codec (Avro, JSON Schema) and never
re-encodes anything: replayed bytes stay as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from streamkit.codecs.avro import AvroCodec
from streamkit.codecs.jsonschema import JsonSchemaCodec
from streamkit.codecs.registry import RegistryCodec, registry_call, registry_client, schema_id_of
from streamkit.errors import DecodeError


class RegistryView:
    """Describes Confluent-wire-format values with the schemas of ``registry`` (URL or conf)."""

    def __init__(self, registry: str | Mapping[str, Any]) -> None:
        self.client = registry_client(registry)
        self._codecs: dict[str, RegistryCodec] = {
            "AVRO": AvroCodec(self.client),
            "JSON": JsonSchemaCodec(self.client),
        }
        self._schemas: dict[int, tuple[str, str | None]] = {}  # id -> (type, record name)

    @staticmethod
    def encoded(value: bytes | None) -> bool:
        """True when ``value`` looks like the wire format (magic byte 0, a schema id)."""
        return value is not None and len(value) >= 6 and value[0] == 0

    def schema(self, value: bytes) -> dict[str, Any]:
        """``{"id", "type", "name"}`` of ``value``'s schema, looked up once per id."""
        schema_id = schema_id_of(value)
        found = self._schemas.get(schema_id)
        if found is None:
            schema = registry_call(
                f"schema id {schema_id}", value, lambda: self.client.get_schema(schema_id)
            )
            kind = schema.schema_type or "AVRO"  # the registry omits the default type
            codec = self._codecs.get(kind)
            found = (kind, codec.schema_name(schema.schema_str) if codec else None)
            self._schemas[schema_id] = found
        return {"id": schema_id, "type": found[0], "name": found[1]}

    def describe(self, value: bytes) -> dict[str, Any]:
        """The schema and the decoded body (``data``); DecodeError if it does not decode."""
        schema = self.schema(value)
        codec = self._codecs.get(schema["type"])
        if codec is None:
            raise DecodeError(f"{schema['type']} records are not decoded for display", raw=value)
        data = codec.describe(value)["data"]
        # JSON-able for --json: bytes, decimals and the like are shown as text.
        return {"schema": schema, "data": orjson.loads(orjson.dumps(data, default=str))}

    def close(self) -> None:
        """Close the registry client's connections."""
        self.client.close()
