"""Records confirmed in bulk at commit points (``ctx.emit``): no delivery report each.

A :class:`~streamkit.Producer` makes a :class:`~streamkit.delivery.Delivery` and serves a
delivery report for every record: a Python object and a Python call (in another thread,
taking the GIL) per output. A relay that publishes one record per event pays for both on
every event. An emitted record needs neither: its own idempotent producer runs with
``delivery.report.only.error``, so librdkafka reports failures only, and the commit point
waits for everything emitted so far (:meth:`Emitter.confirm`, a flush) before it commits.
That is what a hand-written loop does (produce, flush, commit), and what Quix Streams
does.

What keeps at-least-once: a record emitted *untraced* (the usual case) has nothing of
its own in Python, not even a callback: a failure is reported to the client's one
callback, which cannot tell the record's input (a delivery report carries no headers).
The commit owner (:mod:`streamkit.consumer.confirmed`) then commits nothing, reads every
partition again from its last commit and has the emitter *trace* (:meth:`Emitter.trace`)
until the work read again is committed: each record then carries a callback naming its
input (a ``partial``, called only on failure; librdkafka drops a success's report and
confluent-kafka frees the callback with it), so the input whose record fails again is
known, read again from there and sent down the failure path. Tracing every record costs
about 7 % of a relay's throughput (scenario 8), so it is kept for the work after a
failure.

A second producer, because ``delivery.report.only.error`` is a setting of the whole
client: ``ctx.publish``, retry and DLQ records keep their reports on the worker's main
producer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException

from streamkit.clientlog import RDKAFKA_LOG
from streamkit.config import redact
from streamkit.delivery import CONFIRMED, Confirmation, SourceKey, map_error
from streamkit.errors import ConfigError, DeliveryTimeoutError, ProducerClosedError
from streamkit.producer.producer import DEFAULT_SETTINGS, FORCED_SETTINGS
from streamkit.record import OutgoingRecord

# librdkafka's queue is full (the broker is slower than we emit): wait this long for room,
# serving reports, before the emit fails with a typed error (the handler's failure).
ROOM_WAIT = 30.0


class Emitter:
    """The producer behind ``ctx.emit``: idempotent, ``acks=all``, failures only reported.

    Its client is made by :meth:`start` (the worker's, at start-up) or on the first emit.
    Thread-safe: handlers in threads may emit.
    """

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self.settings: dict[str, Any] = {
            **DEFAULT_SETTINGS,
            "logger": RDKAFKA_LOG,
            **settings,
            **FORCED_SETTINGS,
            "delivery.report.only.error": True,
            "on_delivery": self._report_untraced,
        }
        self._producer: confluent_kafka.Producer | None = None
        self._lock = threading.Lock()
        self._failed: list[tuple[str, int, int, BaseException]] = []
        self._untraced: BaseException | None = None  # the first untraced failure
        self._traced = False
        self._used = False  # anything emitted yet
        self._closed = False
        # Counts for the produced-records metric since take_counts(): an int add per
        # record, not a lock (emits from a handler's thread may rarely lose one).
        self._n_sent = 0
        self._n_failed = 0

    @property
    def active(self) -> bool:
        """True once something was emitted: commit points then confirm first."""
        return self._used

    def start(self) -> None:
        """Make the client now, not on the first emit."""
        self._start()

    @property
    def traced(self) -> bool:
        """True while each record carries a callback naming its input."""
        return self._traced

    def take_counts(self) -> tuple[int, int]:
        """Records sent and failed since the last call (for the produced-records metric)."""
        counts = (self._n_sent, self._n_failed)
        self._n_sent = self._n_failed = 0
        return counts

    def trace(self, on: bool) -> None:
        """Name each record's input from now on (``on``), for the commit owner."""
        self._traced = on

    def emit(self, record: OutgoingRecord, topic: str, partition: int, offset: int) -> None:
        """Send ``record``, from input ``topic/partition/offset``; its delivery is
        confirmed by the next :meth:`confirm`."""
        producer = self._producer or self._start()
        self._used = True  # before the record can be in flight: commit points confirm
        kwargs: dict[str, Any] = {"headers": record.headers}
        if self._traced:
            kwargs["on_delivery"] = partial(self._report, topic, partition, offset)
        if record.partition is not None:
            kwargs["partition"] = record.partition
        try:
            producer.produce(record.topic, record.value, record.key, **kwargs)
        except BufferError:
            self._produce_when_room(producer, record.topic, record.value, kwargs)
        except KafkaException as exc:  # refused locally (too large, fatal): the handler's
            raise map_error(exc.args[0]) from None  # failure, as a raise of its own would be
        self._n_sent += 1

    def confirm(self, timeout: float) -> Confirmation:
        """Wait up to ``timeout`` for every record emitted so far; say which inputs failed.

        Blocking: the caller's thread serves the failure reports (nothing else polls this
        client). ``complete`` is False when records were still unacknowledged at the end:
        nothing they came from may be committed yet.
        """
        producer = self._producer
        if producer is None:
            return CONFIRMED
        left = producer.flush(timeout)
        with self._lock:  # a handler's thread may serve a report (waiting for room)
            failed, self._failed = self._failed, []
            untraced, self._untraced = self._untraced, None
        if not failed and not left and untraced is None:
            return CONFIRMED
        self._n_failed += len(failed) + (untraced is not None)
        return Confirmation(left == 0, _by_source(failed), untraced)

    def close(self, timeout: float = 10.0) -> int:
        """Flush (bounded) and stop; return how many records were left unsent.

        Call it after the last commit: a record left here was never confirmed, so its
        input was not committed and is handled again by the next owner.
        """
        self._closed = True
        producer = self._producer
        if producer is None:
            return 0
        left = int(producer.flush(timeout))
        if left:
            producer.purge()
            producer.flush(1.0)
        return left

    def _start(self) -> confluent_kafka.Producer:
        with self._lock:
            if self._closed:
                raise ProducerClosedError("producer is closed")
            if self._producer is None:
                try:
                    self._producer = confluent_kafka.Producer(self.settings)
                except KafkaException as exc:
                    raise ConfigError(
                        f"invalid producer settings: {redact(self.settings, str(exc))}"
                    ) from None
            return self._producer

    def _report_untraced(self, err: KafkaError | None, _: Any) -> None:
        """The client's report for untraced records: failures only; whose, unknown."""
        if err is None:
            return
        error = map_error(err)
        with self._lock:
            if self._untraced is None:
                self._untraced = error

    def _report(
        self, topic: str, partition: int, offset: int, err: KafkaError | None, _: Any
    ) -> None:
        """librdkafka's report of a record from input ``topic/partition/offset``:
        failures only (``delivery.report.only.error``)."""
        if err is None:
            return
        failure = (topic, partition, offset, map_error(err))
        with self._lock:
            self._failed.append(failure)

    def _produce_when_room(
        self, producer: confluent_kafka.Producer, topic: str, value: bytes | None, kwargs: Any
    ) -> None:
        # Blocking the caller is the backpressure here: nothing is held in Python memory.
        deadline = time.monotonic() + ROOM_WAIT
        while time.monotonic() < deadline:
            producer.poll(0.01)
            try:
                producer.produce(topic, value, **kwargs)
                return
            except BufferError:
                continue
            except KafkaException as exc:
                raise map_error(exc.args[0]) from None
        raise DeliveryTimeoutError(f"local producer queue still full after {ROOM_WAIT:.0f}s")


def _by_source(
    failed: list[tuple[str, int, int, BaseException]],
) -> dict[SourceKey, dict[int, BaseException]]:
    out: dict[SourceKey, dict[int, BaseException]] = {}
    for topic, partition, offset, error in failed:
        out.setdefault((topic, partition), {}).setdefault(offset, error)
    return out
