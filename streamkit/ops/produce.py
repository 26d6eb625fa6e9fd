"""Publish events given on the command line or as JSON lines, through the idempotent producer."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from streamkit.codecs import NOT_PARSED
from streamkit.envelope import new_event_id
from streamkit.errors import PermanentError, ProducerError
from streamkit.handlers.registry import Router
from streamkit.ops.cluster import Cluster
from streamkit.ops.errors import InvalidInputError, OpsError
from streamkit.producer import Delivery, Producer

ACK_TIMEOUT = 60.0  # seconds; longer than the producer's message.timeout.ms


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One event to publish."""

    event_type: str
    data: Any
    key: str | None = None


def parse_data(text: str) -> Any:
    """``--data`` JSON text -> a JSON object; :class:`InvalidInputError` with the reason."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"--data is not valid JSON: {exc}") from None
    _require_object(data, "--data")
    return data


def _require_object(data: Any, where: str) -> None:
    # An envelope's data is an object: handlers take a model or a dict, and anything else
    # would only be dead-lettered by the consumer as a SchemaError.
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__.replace("str", "string")
        raise InvalidInputError(f"{where}: data must be a JSON object, got {kind}")


def check_against(router: Router, events: Iterable[Outgoing], module: str) -> None:
    """Decode each event as its handler in ``router`` would: the first mismatch raises.

    Catches what the consumer would dead-letter at once (wrong fields, unknown type)
    before anything is sent.
    """
    for number, event in enumerate(events, 1):
        spec = router.get(event.event_type)
        where = f"event {number} ({event.event_type})"
        if spec is None:
            handled = ", ".join(sorted(s.event_type for s in router.handlers()))
            raise InvalidInputError(
                f"{where}: {module} has no handler for it (it handles: {handled})"
            )
        try:
            value = spec.codec.encode(event.event_type, event.data, event_id=new_event_id())
            spec.decode(value, NOT_PARSED)
        except PermanentError as exc:
            raise InvalidInputError(f"{where}: does not match {spec.name}: {exc}") from None


def parse_line(
    line: str, where: str, default_type: str | None, default_key: str | None
) -> Outgoing:
    """One JSON line ``{"event_type", "data", "key"?}`` -> :class:`Outgoing`."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"{where}: invalid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidInputError(f"{where}: expected a JSON object with event_type and data")
    event_type = obj.get("event_type", default_type)
    if not isinstance(event_type, str) or not event_type:
        raise InvalidInputError(f"{where}: no event_type (give it in the line or --event-type)")
    key = obj.get("key", default_key)
    if key is not None and not isinstance(key, str):
        raise InvalidInputError(f"{where}: key must be a string")
    _require_object(obj.get("data"), where)
    return Outgoing(event_type, obj.get("data"), key)


def parse_lines(
    lines: Iterable[str],
    source: str,
    default_type: str | None = None,
    default_key: str | None = None,
) -> list[Outgoing]:
    """Every non-blank line of ``lines``; the first bad one raises (nothing is sent)."""
    events = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            events.append(parse_line(line, f"{source} line {number}", default_type, default_key))
    return events


def publish(cluster: Cluster, topic: str, events: Iterable[Outgoing]) -> int:
    """Publish ``events`` to ``topic``; return how many the broker acknowledged.

    Raises :class:`OpsError` naming the first failure when any record failed.
    """
    cluster.require(topic)
    with Producer(cluster.producer_settings()) as producer:
        deliveries = [
            producer.publish(e.event_type, e.data, key=e.key, topic=topic) for e in events
        ]
        producer.flush(ACK_TIMEOUT)
        return _count(deliveries)


def _count(deliveries: list[Delivery]) -> int:
    ok, first_error = 0, None
    for delivery in deliveries:
        try:
            delivery.result(ACK_TIMEOUT)
            ok += 1
        except (ProducerError, concurrent.futures.TimeoutError) as exc:
            first_error = first_error or f"{type(exc).__name__}: {exc}"
    if first_error is not None:
        failed = len(deliveries) - ok
        raise OpsError(
            f"{failed} of {len(deliveries)} events failed ({ok} published): {first_error}"
        )
    return ok
