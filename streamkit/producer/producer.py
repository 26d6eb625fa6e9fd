"""The idempotent producer: ``acks=all``, idempotence on, delivery futures, bounded close."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from streamkit.config import redact
from streamkit.envelope import HEADER_EVENT_ID, HEADER_EVENT_TYPE, Headers, encode_envelope
from streamkit.envelope import new_event_id as _new_event_id
from streamkit.errors import (
    ConfigError,
    DeliveryFailedError,
    DeliveryTimeoutError,
    ProducerClosedError,
    ProducerError,
    RecordTooLargeError,
    UnknownTopicError,
)

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
RDKAFKA_LOG = logging.getLogger("streamkit.librdkafka")
QUEUE_FULL_WAIT = 0.01  # seconds between tries when the local queue is full
QUEUE_FULL_LIMIT = 30.0  # give up (typed error) after this long


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Where the broker stored a record."""

    topic: str
    partition: int
    offset: int
    latency: float  # seconds from send to acknowledgement


# One lock for every Delivery: held for a few instructions, never while calling out.
_LOCK = threading.Lock()
_PENDING, _OK, _FAILED = 0, 1, 2


class Delivery:
    """The pending delivery of one record: ``await`` it, or call :meth:`result`.

    Lighter than a ``concurrent.futures.Future`` (no condition variable unless someone
    blocks on it): one is made per record, so it is on the producer's hot path.
    """

    __slots__ = ("_callbacks", "_error", "_event", "_notify", "_result", "_started", "_state")

    def __init__(self, notify: Callable[[str, float], None] | None = None) -> None:
        self._state = _PENDING
        self._result: DeliveryResult | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Delivery], None]] | None = None
        self._event: threading.Event | None = None
        self._notify = notify
        self._started = time.monotonic()

    @classmethod
    def completed(cls, result: DeliveryResult) -> Delivery:
        """A delivery that already succeeded (in-memory brokers, tests)."""
        delivery = cls()
        delivery._settle(result, None)
        return delivery

    def _report(self, err: KafkaError | None, msg: Any) -> None:
        """librdkafka's delivery report (producer thread)."""
        latency = time.monotonic() - self._started
        if err is not None:
            self._settle(None, map_error(err))
        else:
            self._settle(DeliveryResult(msg.topic(), msg.partition(), msg.offset(), latency), None)
        if self._notify is not None:
            self._notify("failed" if err is not None else "ok", latency)

    def _settle(self, result: DeliveryResult | None, error: BaseException | None) -> None:
        with _LOCK:
            self._result, self._error = result, error
            self._state = _FAILED if error is not None else _OK
            callbacks, self._callbacks = self._callbacks, None
            event = self._event
        if event is not None:
            event.set()
        for fn in callbacks or ():
            fn(self)

    def __await__(self) -> Generator[Any, None, DeliveryResult]:
        if self._state == _PENDING:
            loop = asyncio.get_running_loop()
            woken: asyncio.Future[None] = loop.create_future()

            def wake(_: Delivery) -> None:
                loop.call_soon_threadsafe(_wake, woken)

            self.add_done_callback(wake)
            yield from woken
        return self.result()

    def result(self, timeout: float | None = None) -> DeliveryResult:
        """Block until acknowledged; raises a :class:`~streamkit.errors.ProducerError`."""
        if self._state == _PENDING:
            with _LOCK:
                if self._state == _PENDING and self._event is None:
                    self._event = threading.Event()
                event = self._event
            if event is not None and not event.wait(timeout):
                raise TimeoutError(f"no delivery report within {timeout}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def done(self) -> bool:
        """True once acknowledged or failed."""
        return self._state != _PENDING

    def add_done_callback(self, fn: Callable[[Delivery], None]) -> None:
        """Call ``fn(self)`` once done (in the producer's thread, or now if done)."""
        with _LOCK:
            if self._state == _PENDING:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        fn(self)

    def exception(self) -> BaseException | None:
        """The failure, once done; None on success or while pending."""
        return self._error


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def map_error(err: KafkaError) -> ProducerError:
    """Turn a client error into streamkit's typed producer errors."""
    code = err.code()
    message = f"{err.name()}: {err.str()}"
    if code == KafkaError.MSG_SIZE_TOO_LARGE:
        return RecordTooLargeError(message)
    if code in (KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART):
        return UnknownTopicError(message)
    if code == KafkaError._MSG_TIMED_OUT:
        return DeliveryTimeoutError(message)
    error = DeliveryFailedError(message)
    error.retriable = bool(err.retriable())
    return error


def _to_bytes(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


class Producer:
    """Publishes events as envelopes through an idempotent confluent-kafka producer.

    ``topics`` maps event types to topics for :meth:`publish` calls that name none;
    ``default_topic`` catches the rest. A background thread serves delivery reports, so
    nothing is flushed per message.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        topics: Mapping[str, str] | None = None,
        default_topic: str | None = None,
        on_delivery: Callable[[str, float], None] | None = None,
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
        self._closing = False  # send() refuses new records
        self._closed = False  # the delivery-report thread stops
        self._thread = threading.Thread(target=self._serve, name="streamkit-producer", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        # Delivery reports are served here, off the event loop; poll returns as soon as a
        # report arrives, so the 0.1 s bound only limits how fast close() is noticed.
        while not self._closed:
            self._producer.poll(0.1)

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
        """Publish ``data`` (a pydantic model or JSON-able value) as an envelope."""
        event_id = event_id or _new_event_id()
        value = encode_envelope(event_type, data, event_id=event_id)
        all_headers: Headers = [
            (HEADER_EVENT_TYPE, event_type.encode()),
            (HEADER_EVENT_ID, event_id.encode()),
        ]
        if headers:
            all_headers.extend(headers)
        return self.send(topic or self.topic_for(event_type), value, key=key, headers=all_headers)

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
        delivery = Delivery(self._on_delivery)
        kwargs: dict[str, Any] = {
            "key": _to_bytes(key),
            "headers": headers,
            "on_delivery": delivery._report,
        }
        if partition is not None:
            kwargs["partition"] = partition
        self._produce(topic, value, kwargs)
        return delivery

    def _produce(self, topic: str, value: bytes | None, kwargs: dict[str, Any]) -> None:
        deadline = time.monotonic() + QUEUE_FULL_LIMIT
        while True:
            try:
                self._producer.produce(topic, value, **kwargs)
                return
            except BufferError:
                # Local queue full: the broker is slower than we produce. Wait for reports
                # to drain it (bounded), rather than dropping or growing memory.
                if time.monotonic() > deadline:
                    raise DeliveryTimeoutError("local producer queue stayed full") from None
                time.sleep(QUEUE_FULL_WAIT)
            except KafkaException as exc:
                raise map_error(exc.args[0]) from None

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` seconds for outstanding records; return how many remain."""
        return int(self._producer.flush(timeout))

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
        self._closed = True
        self._thread.join(timeout=1.0)
        return remaining

    def __len__(self) -> int:
        """Records waiting in the local queue or in flight."""
        return len(self._producer)

    def __enter__(self) -> Producer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
