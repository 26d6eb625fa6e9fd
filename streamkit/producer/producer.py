"""The idempotent producer: ``acks=all``, idempotence on, delivery futures, bounded close."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, cast

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from streamkit.clientlog import RDKAFKA_LOG
from streamkit.codecs.base import Codec, event_record
from streamkit.codecs.json import JSON_ENVELOPE
from streamkit.config import redact
from streamkit.delivery import Delivery, DeliveryResult, map_error
from streamkit.envelope import new_event_id
from streamkit.errors import ConfigError, DeliveryTimeoutError, ProducerClosedError
from streamkit.record import Headers, as_key

__all__ = ["DEFAULT_SETTINGS", "FORCED_SETTINGS", "Delivery", "DeliveryResult", "Producer"]

# Safety is not negotiable here; these win over user passthrough settings.
FORCED_SETTINGS = {"enable.idempotence": True, "acks": "all"}
# Defaults a user may override: a little lingering batches records without hurting latency.
DEFAULT_SETTINGS: dict[str, Any] = {
    "linger.ms": 5,
    "compression.type": "lz4",
    "message.timeout.ms": 30_000,
    # A missing topic fails its records as UnknownTopicError after this long, instead of
    # waiting out message.timeout.ms as a vague timeout (librdkafka's default is 30 s).
    "topic.metadata.propagation.max.ms": 10_000,
}
# Records held here while librdkafka's own queue is full (queue.buffering.max.messages).
# Beyond this many a send fails at once with a typed error instead of growing memory.
OVERFLOW_LIMIT = 100_000
Pending = tuple[str, bytes | None, dict[str, Any], Delivery]


class Producer:
    """Publishes events through an idempotent confluent-kafka producer.

    ``topics`` maps event types to topics for :meth:`publish` calls that name none;
    ``default_topic`` catches the rest; ``codec`` encodes values (default: the JSON
    envelope). A background thread serves delivery reports, so nothing is flushed per
    message (``report_thread=False``: only :meth:`flush` and :meth:`serve_reports` do).
    ``on_delivery(outcome, latency)`` hears of each report and ``on_settled`` gets each
    settled :class:`Delivery`, both in the thread that served it. Implements
    :class:`~streamkit.record.Publisher`.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        topics: Mapping[str, str] | None = None,
        default_topic: str | None = None,
        on_delivery: Callable[[str, float], None] | None = None,
        codec: Codec | None = None,
        on_settled: Callable[[Delivery], None] | None = None,
        report_thread: bool = True,
    ) -> None:
        conf = {**DEFAULT_SETTINGS, "logger": RDKAFKA_LOG, **settings, **FORCED_SETTINGS}
        try:
            self._producer = confluent_kafka.Producer(conf)
        except KafkaException as exc:
            raise ConfigError(f"invalid producer settings: {redact(conf, str(exc))}") from None
        self.settings = conf
        self._topics = dict(topics or {})
        self._default_topic = default_topic
        self._on_delivery = on_delivery
        self._on_settled = on_settled  # each Delivery, once settled (the worker's hand-off)
        self.codec: Codec = codec or JSON_ENVELOPE
        self._closing = False  # send() refuses new records
        self._closed = False  # the delivery-report thread stops
        # A full local queue must never block the caller (the event loop): records wait
        # here, in order, and the delivery thread feeds them in as reports free room.
        self._overflow: deque[Pending] = deque()
        self._overflow_lock = threading.Lock()
        self._fatal_seen = False
        # Sends refused with _STATE: a transactional producer whose transaction failed
        # refuses every send until it is aborted (exactly-once mode watches this count).
        self.refused = 0
        # Without it (``report_thread=False``), reports are served only by flush() and
        # serve_reports(), in the caller's thread: for a caller that flushes per batch
        # (replay), whose thread a report thread would take the GIL from report by report.
        self._thread: threading.Thread | None = None
        if report_thread:
            self._thread = threading.Thread(
                target=self._serve, name="streamkit-producer", daemon=True
            )
            self._thread.start()

    def _serve(self) -> None:
        # Delivery reports are served here, off the event loop; poll returns as soon as a
        # report arrives, so the 0.1 s bound only limits how fast close() is noticed.
        while not self._closed:
            try:
                self._producer.poll(0.1 if not self._overflow else 0.005)
            except KafkaException as exc:  # a fatal producer error (fenced): reports stop
                self._fatal(exc)
                continue
            if self._overflow:
                self._feed()

    def _fatal(self, exc: KafkaException) -> None:
        """The client raised from poll (fatal error): say it once, never spin on it."""
        if not self._fatal_seen:
            self._fatal_seen = True
            RDKAFKA_LOG.error("producer failed for good: %s", redact(self.settings, str(exc)))
        time.sleep(0.1)

    def _feed(self) -> None:
        """Move waiting records into librdkafka's queue while it has room (delivery thread)."""
        with self._overflow_lock:
            while self._overflow:
                topic, value, kwargs, delivery = self._overflow[0]
                try:
                    self._producer.produce(topic, value, **kwargs)
                except BufferError:
                    return  # still full: next report
                except KafkaException as exc:
                    self._refused(exc.args[0])
                    delivery._settle(None, map_error(exc.args[0]))
                self._overflow.popleft()

    def _refused(self, err: KafkaError) -> None:
        if err.code() == KafkaError._STATE:
            self.refused += 1  # an int add: atomic enough for a count read elsewhere

    def topic_for(self, event_type: str) -> str:
        """The topic an event type is published to when the caller names none."""
        topic = self._topics.get(event_type, self._default_topic)
        if topic is None:
            raise ConfigError(
                f"no topic for event type {event_type!r}: pass topic=, or map it in "
                "Router(publish_topics=...) / STREAMKIT_PUBLISH_TOPICS"
            )
        return topic

    def publish(
        self,
        event_type: str,
        data: Any,
        *,
        key: str | bytes | None = None,
        topic: str | None = None,
        headers: Headers | None = None,
        event_id: str | None = None,
    ) -> Delivery:
        """Publish ``data`` (a pydantic model or JSON-able value), encoded by the codec."""
        record = event_record(
            self.codec,
            topic or self.topic_for(event_type),
            event_type,
            data,
            key=key,
            headers=headers,
            event_id=event_id or new_event_id(),
        )
        return self.send(record.topic, record.value, key=record.key, headers=record.headers)

    def send(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: str | bytes | None = None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> Delivery:
        """Send raw bytes as they are (retry/DLQ records, replay). Thread-safe."""
        if self._closing:
            raise ProducerClosedError("producer is closed")
        delivery = Delivery(self._on_delivery, self._on_settled)
        key = as_key(key)
        # -1: librdkafka's "unassigned" (the partitioner decides), produce()'s own default.
        partition = -1 if partition is None else partition
        if not self._overflow:  # the usual case: straight in, no lock
            # Keywords spelled out, no dict: once per record (~0.3 us less). The cast: the
            # stub wants list[tuple[str, str | bytes | None]], and lists are invariant.
            try:
                self._producer.produce(
                    topic, value, key=key, partition=partition, headers=cast(Any, headers),
                    on_delivery=delivery._report,
                )  # fmt: skip
                return delivery
            except BufferError:
                pass
            except KafkaException as exc:
                self._refused(exc.args[0])
                raise map_error(exc.args[0]) from None
        kwargs: dict[str, Any] = {"key": key, "partition": partition, "headers": headers}
        self._hold(topic, value, {**kwargs, "on_delivery": delivery._report}, delivery)
        return delivery

    def _hold(
        self, topic: str, value: bytes | None, kwargs: dict[str, Any], delivery: Delivery
    ) -> None:
        """Local queue full: the broker is slower than we produce. Wait, without blocking."""
        with self._overflow_lock:
            if len(self._overflow) >= OVERFLOW_LIMIT:
                raise DeliveryTimeoutError(
                    f"local producer queue full ({OVERFLOW_LIMIT} records waiting)"
                )
            self._overflow.append((topic, value, kwargs, delivery))

    def serve_reports(self) -> int:
        """Serve the delivery reports ready now, in the calling thread; return how many.

        The background thread serves them too, but each report it serves takes the GIL
        back from a busy caller (up to ``sys.getswitchinterval()``, 5 ms, each time): a
        busy event loop serves its own between batches, in one go, with the GIL it holds.
        """
        if self._closed:
            return 0
        try:
            return int(self._producer.poll(0))
        except KafkaException:  # fatal (fenced): the background thread says so, once
            return 0

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for outstanding records; return how many remain."""
        deadline = time.monotonic() + timeout
        while self._overflow and time.monotonic() < deadline:
            self._producer.flush(min(0.05, timeout))
            if self._thread is None:  # no report thread feeds them in: do it here
                self._feed()
        left = max(deadline - time.monotonic(), 0.0)
        return int(self._producer.flush(left)) + len(self._overflow)

    @property
    def failed(self) -> bool:
        """True once the client reported a fatal error (fenced): it cannot send again."""
        return self._fatal_seen

    @property
    def client(self) -> confluent_kafka.Producer:
        """The underlying confluent-kafka producer (transactions drive it directly)."""
        return self._producer

    def close(self, timeout: float = 10.0) -> int:
        """Flush with a bound, then stop. Records still unsent fail their futures."""
        if self._closing:
            return 0
        self._closing = True  # no new records from here: the flush below covers them all
        remaining = self.flush(timeout)
        if remaining:
            # Fail what is left rather than hang: their futures get a delivery error.
            self._producer.purge()
            self._producer.flush(1.0)
            with self._overflow_lock:
                for *_, delivery in self._overflow:
                    delivery._settle(None, ProducerClosedError("producer closed before sending"))
                self._overflow.clear()
        self._closed = True
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        return remaining

    def __len__(self) -> int:
        """Records waiting in the local queue or in flight."""
        return len(self._producer) + len(self._overflow)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
