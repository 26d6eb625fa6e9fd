"""The per-event :class:`Context` handed to handlers that ask for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.record import Headers, Record

if TYPE_CHECKING:
    from streamkit.delivery import Delivery
    from streamkit.handlers.publishing import EventPublisher


class Context:
    """Metadata about the event being handled, and :meth:`publish` for follow-up events.

    Publishes made through the context are tracked: the event's offset is committed only
    after every one of them was acknowledged by the broker, so a crash never loses an
    output whose input was committed. ``state`` is a dict for this event alone, for
    middleware to carry things from its scope to its publish hook (a span, a transaction).
    """

    __slots__ = (
        "_pending",
        "_publisher",
        "_state",
        "attempt",
        "event_id",
        "event_type",
        "group",
        "headers",
        "key",
        "offset",
        "partition",
        "payload",
        "timestamp",
        "topic",
    )

    def __init__(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        headers: Headers | None,
        event_type: str,
        event_id: str | None,
        attempt: int,
        timestamp: int,
        group: str,
        publisher: EventPublisher | None,
        payload: Any = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.headers: Headers = headers or []
        self.event_type = event_type
        self.event_id = event_id
        self.attempt = attempt
        self.timestamp = timestamp  # milliseconds since the epoch, as Kafka records it
        self.group = group
        self._publisher = publisher
        self._pending: list[Delivery] = []
        self._state: dict[str, Any] | None = None  # made when first asked for
        # The decoded payload the handler gets: for middleware keyed on it (a dedupe key).
        self.payload = payload

    @classmethod
    def _of(  # the runtime's constructor: one per event, positional
        cls,
        record: Record,
        topic: str,
        partition: int,
        headers: Headers | None,
        event_type: str,
        event_id: str | None,
        attempt: int,
        group: str,
        publisher: EventPublisher | None,
        payload: Any,
    ) -> Context:
        """What :meth:`__init__` makes, from the consumed record, for the runtime: a
        quarter of the cost (no keyword parsing; ``state`` made only if used), and the
        runtime makes one for every event that wants it."""
        ctx = cls.__new__(cls)
        ctx.topic = topic
        ctx.partition = partition
        ctx.offset = record.offset()
        ctx.key = record.key()
        ctx.headers = headers or []
        ctx.event_type = event_type
        ctx.event_id = event_id
        ctx.attempt = attempt
        ctx.timestamp = record.timestamp()[1]
        ctx.group = group
        ctx._publisher = publisher
        ctx._pending = []  # not made lazily: publish may be called from a handler's threads
        ctx._state = None
        ctx.payload = payload
        return ctx

    @property
    def state(self) -> dict[str, Any]:
        """A dict for this event alone: middleware carries things from its scope to its
        publish hook in it (a span, a transaction)."""
        if self._state is None:
            self._state = {}
        return self._state

    def publish(
        self,
        event_type: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        topic: str | None = None,
        headers: Headers | None = None,
    ) -> Delivery:
        """Publish a follow-up event; ``await`` the result for its delivery report.

        Not awaiting it is fine too: the runtime waits for the acknowledgement before it
        marks this event done.
        """
        if self._publisher is None:
            raise RuntimeError("this context has no publisher")
        delivery = self._publisher.publish(
            event_type, data, key=key, topic=topic, headers=headers, ctx=self
        )
        self._pending.append(delivery)
        return delivery

    def emit(
        self,
        event_type: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        topic: str | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Publish a follow-up event, confirmed in bulk at the next commit point.

        The fast way to publish one event per event (a relay): no delivery report per
        record. This event counts as done when the handler returns; its offset is
        committed only after every record emitted before the commit was acknowledged. If
        one failed, nothing is committed then: the partitions are read again from their
        last commit with each record traced to its input, and an input whose record fails
        again goes down the failure path (retry tier, DLQ) with the delivery's error;
        the events read again run again (at-least-once). Use :meth:`publish` to
        await a delivery or act on its result. Records emitted and published go through
        two producers: keep one of the two for events whose relative order matters.
        """
        if self._publisher is None:
            raise RuntimeError("this context has no publisher")
        delivery = self._publisher.emit(event_type, data, key, topic, headers, self)
        if delivery is not None:  # no emitter (exactly-once, tests): tracked as publish's
            self._pending.append(delivery)

    def pending_deliveries(self) -> list[Delivery]:
        """Deliveries started through this context (used by the runtime)."""
        return self._pending

    def __repr__(self) -> str:
        return (
            f"Context(topic={self.topic!r}, partition={self.partition}, offset={self.offset}, "
            f"event_type={self.event_type!r}, attempt={self.attempt})"
        )
