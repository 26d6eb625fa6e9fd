"""Publish events given on the command line or as JSON lines, through the idempotent producer."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from streamkit.errors import ProducerError
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
    """``--data`` JSON text -> a value; :class:`InvalidInputError` with the reason."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"--data is not valid JSON: {exc}") from None


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
