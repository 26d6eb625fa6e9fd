"""The one way the runtime sends records: encode with the codec, run publish hooks, send.

``ctx.publish`` and the failure path (retry tiers, DLQ) both go through
:class:`EventPublisher`, so a middleware's ``before_publish`` sees every record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.codecs.base import Codec, event_record
from streamkit.delivery import Delivery
from streamkit.envelope import new_event_id
from streamkit.handlers.chain import MiddlewareChain
from streamkit.record import Emitting, Headers, OutgoingRecord, Publisher

if TYPE_CHECKING:
    from streamkit.handlers.context import Context


class EventPublisher:
    """A :class:`~streamkit.record.Publisher` plus the router's codec and publish hooks."""

    __slots__ = ("chain", "codec", "emitter", "publisher")

    def __init__(
        self,
        publisher: Publisher,
        codec: Codec,
        chain: MiddlewareChain,
        emitter: Emitting | None = None,
    ) -> None:
        self.publisher = publisher
        self.codec = codec
        self.chain = chain
        # ctx.emit's records, confirmed at commit points; None (exactly-once, the in-memory
        # broker): they are published and tracked as ctx.publish's are.
        self.emitter = emitter

    def publish(
        self,
        event_type: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        topic: str | None = None,
        headers: Headers | None = None,
        ctx: Context | None = None,
    ) -> Delivery:
        """Encode and send one event (to ``topic``, else the type's mapped topic)."""
        return self.send(self._record(event_type, data, key, topic, headers), ctx)

    def emit(  # positional: ctx.emit's one caller, once per output of a relay
        self,
        event_type: str,
        data: Any,
        key: str | bytes | None,
        topic: str | None,
        headers: Headers | None,
        ctx: Context,
    ) -> Delivery | None:
        """Encode and send one event for ``ctx.emit``: confirmed at the next commit
        point, or (no emitter) published and tracked as ``ctx.publish`` is."""
        record = self._record(event_type, data, key, topic, headers)
        if self.chain.hooked:
            self.chain.before_publish(record, ctx)
        if self.emitter is None:
            return self.send_prepared(record)
        self.emitter.emit(record, ctx.topic, ctx.partition, ctx.offset)
        return None

    def _record(
        self,
        event_type: str,
        data: Any,
        key: str | bytes | None,
        topic: str | None,
        headers: Headers | None,
    ) -> OutgoingRecord:
        return event_record(
            self.codec,
            topic or self.publisher.topic_for(event_type),
            event_type,
            data,
            key=key,
            headers=headers,
            event_id=new_event_id(),
        )

    def send(self, record: OutgoingRecord, ctx: Context | None = None) -> Delivery:
        """Run the publish hooks on ``record``, then send it as it is."""
        self.prepare(record, ctx)
        return self.send_prepared(record)

    def prepare(self, record: OutgoingRecord, ctx: Context | None = None) -> None:
        """Run the publish hooks on ``record`` (once, however often it is sent)."""
        self.chain.before_publish(record, ctx)

    def send_prepared(self, record: OutgoingRecord) -> Delivery:
        """Send ``record`` as it is, hooks already run (a failed send is sent again)."""
        return self.publisher.send(
            record.topic,
            record.value,
            key=record.key,
            headers=record.headers,
            partition=record.partition,
        )
