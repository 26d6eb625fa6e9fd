"""The typed seams between streamkit and a Kafka client: :class:`Record` and :class:`Publisher`.

``Record`` is the read side of a confluent-kafka ``Message`` (and of the in-memory broker's
records); ``Publisher`` is what the runtime needs to write: the idempotent
:class:`~streamkit.Producer` and :class:`~streamkit.testing.TestBroker` both implement it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from streamkit.delivery import Delivery

Headers = list[tuple[str, bytes]]


@runtime_checkable
class Record(Protocol):
    """The accessors of a consumed record, as confluent-kafka's ``Message`` has them."""

    def topic(self) -> str: ...
    def partition(self) -> int: ...
    def offset(self) -> int: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> Headers | None: ...
    def timestamp(self) -> tuple[int, int]: ...
    def error(self) -> Any: ...


class Publisher(Protocol):
    """Sends records as they are and maps event types to topics."""

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: str | bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> Delivery:
        """Send raw bytes; the delivery resolves on the broker's acknowledgement."""
        ...

    def topic_for(self, event_type: str) -> str:
        """The topic ``event_type`` goes to when the caller names none."""
        ...

    def close(self, timeout: float = 10.0) -> int:
        """Flush (bounded) and stop; return how many records were left unsent."""
        ...


class Emitting(Protocol):
    """Sends records whose delivery is confirmed in bulk, at commit points (``ctx.emit``)."""

    def emit(self, record: OutgoingRecord, topic: str, partition: int, offset: int) -> None:
        """Send ``record``, which came from the input at ``topic``/``partition``/``offset``;
        a failed delivery is told at the next commit point, not to the caller."""
        ...


class OutgoingRecord:
    """A record about to be sent: what publish hooks see and may add headers to.

    ``kind`` says why it is sent: ``"event"`` (``ctx.publish``, ``Producer.publish``),
    ``"retry"`` (to a retry tier) or ``"dlq"`` (to the dead-letter topic).
    """

    __slots__ = ("event_type", "headers", "key", "kind", "partition", "topic", "value")

    def __init__(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None,
        headers: Headers,
        kind: str,
        event_type: str | None = None,
        partition: int | None = None,
    ) -> None:
        self.topic = topic
        self.value = value
        self.key = key
        self.headers = headers
        self.kind = kind
        self.event_type = event_type
        self.partition = partition

    def __repr__(self) -> str:
        return f"OutgoingRecord({self.kind} to {self.topic!r}, event_type={self.event_type!r})"


def as_key(key: str | bytes | None) -> bytes | None:
    """A record key as bytes (str keys are UTF-8)."""
    return key.encode() if isinstance(key, str) else key
