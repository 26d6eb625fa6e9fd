"""``streamkit schemas register|check MODULE``: a service's schemas and the registry.

The schemas are those of the models on the module's schema-registry codecs: every
handler's model (subjects of the router's topics) and every model in a codec's
``models=`` that the service publishes (subjects of its ``publish_topics``). ``check`` asks
the registry whether each is compatible with the latest version under the subject's
compatibility level and prints the fields that differ; for CI before a deploy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
import orjson
from pydantic import BaseModel

from streamkit.cli.common import friendly_errors
from streamkit.cli.options import json_option
from streamkit.errors import ConfigError
from streamkit.handlers.registry import Router
from streamkit.handlers.signature import inspect_handler
from streamkit.loader import load_router
from streamkit.ops.render import print_json

EXIT_INCOMPATIBLE = 1


@dataclass(frozen=True)
class Entry:
    """One model's schema under one subject."""

    codec: Any  # a streamkit.codecs.registry.RegistryCodec
    subject: str
    model: type[BaseModel]

    def schema(self) -> Any:
        from confluent_kafka.schema_registry import Schema

        return Schema(self.codec.schema_of(self.model), self.codec.format_name)


def entries(router: Router) -> list[Entry]:
    """Every (codec, subject, model) of ``router``, once each."""
    found: dict[tuple[int, str], Entry] = {}
    for codec, topic, model in _models(router):
        subject = codec.subject_for(topic, model)
        found.setdefault((id(codec), subject), Entry(codec, subject, model))
    if not found:
        raise ConfigError("no schema-registry codec with models in this module")
    return list(found.values())


def _models(router: Router) -> Iterator[tuple[Any, str, type[BaseModel]]]:
    for spec in router.handlers():
        model = inspect_handler(spec.fn).target.model
        if model is not None and hasattr(spec.codec, "subject_for"):
            for topic in [spec.topic] if spec.topic else router.topics:
                yield spec.codec, topic, model
    codecs = {id(s.codec): s.codec for s in router.handlers()}
    codecs.setdefault(id(router.codec), router.codec)
    for codec in codecs.values():
        for event_type, model in getattr(codec, "models", {}).items():
            target = router.publish_topics.get(event_type)
            if target:
                yield codec, target, model


def field_diff(old: str, new: str) -> list[str]:
    """Readable field changes from schema ``old`` to ``new`` (Avro or JSON Schema)."""
    before, after = _fields(orjson.loads(old)), _fields(orjson.loads(new))
    lines = [f"  - field {name!r} removed" for name in before if name not in after]
    for name, (kind, has_default) in after.items():
        if name not in before:
            note = "" if has_default else " without a default"
            lines.append(f"  + field {name!r} added{note}")
        elif before[name][0] != kind:
            lines.append(f"  ~ field {name!r}: {before[name][0]} -> {kind}")
    return lines


def _fields(schema: Any) -> dict[str, tuple[str, bool]]:
    """field name -> (its type as text, has a default)."""
    if isinstance(schema, dict) and isinstance(schema.get("fields"), list):  # Avro record
        return {
            f["name"]: (orjson.dumps(f.get("type")).decode(), "default" in f)
            for f in schema["fields"]
        }
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema, dict) else set()
    return {
        name: (
            orjson.dumps({k: v for k, v in p.items() if k != "title"}).decode(),
            name not in required,
        )
        for name, p in props.items()
    }


def _call(what: str, call: Any) -> Any:
    from streamkit.codecs.registry import registry_call

    return registry_call(what, None, call)


@click.group()
def schemas() -> None:
    """Register and check a service's schemas in the schema registry."""


@schemas.command()
@click.argument("module")
@json_option
@friendly_errors
def register(module: str, as_json: bool) -> None:
    """Register the schema of every model of MODULE under its subject."""
    rows = []
    for e in entries(load_router(module)):
        schema_id = _call(
            e.subject, lambda e=e: e.codec.client.register_schema(e.subject, e.schema())
        )
        rows.append({"subject": e.subject, "model": e.model.__name__, "schema_id": schema_id})
    if as_json:
        print_json({"registered": rows})
        return
    for r in rows:
        click.echo(f"{r['subject']}: {r['model']} registered (schema id {r['schema_id']})")


@schemas.command()
@click.argument("module")
@json_option
@friendly_errors
def check(module: str, as_json: bool) -> None:
    """Exit 1 when a model of MODULE is incompatible with its subject's latest version."""
    verdicts = [_verdict(e) for e in entries(load_router(module))]
    if as_json:
        print_json({"schemas": verdicts})
    else:
        for v in verdicts:
            _print_verdict(v)
    bad = sum(v["status"] == "incompatible" for v in verdicts)
    if bad:
        click.echo(f"streamkit: error: {bad} incompatible schema(s)", err=True)
        sys.exit(EXIT_INCOMPATIBLE)


def _verdict(e: Entry) -> dict[str, Any]:
    """One subject: new, compatible, or incompatible with the fields that differ."""
    client = e.codec.client
    row: dict[str, Any] = {"subject": e.subject, "model": e.model.__name__}
    if e.subject not in _call("subjects", client.get_subjects):
        return {**row, "status": "new"}
    if _call(e.subject, lambda: client.test_compatibility(e.subject, e.schema())):
        return {**row, "status": "compatible"}
    latest = _call(e.subject, lambda: client.get_latest_version(e.subject))
    diff = field_diff(latest.schema.schema_str, e.codec.schema_of(e.model))
    return {**row, "status": "incompatible", "version": latest.version, "diff": diff}


def _print_verdict(v: dict[str, Any]) -> None:
    if v["status"] == "new":
        click.echo(f"{v['subject']}: new subject, nothing to check ({v['model']})")
    elif v["status"] == "compatible":
        click.echo(f"{v['subject']}: {v['model']} compatible")
    else:
        click.echo(f"{v['subject']}: {v['model']} INCOMPATIBLE with version {v['version']}:")
        for line in v["diff"]:
            click.echo(line)
