"""Delivery reports: :class:`Delivery` (awaitable or blocking) and the typed errors they carry."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError

from streamkit.errors import (
    DeliveryFailedError,
    DeliveryTimeoutError,
    ProducerError,
    RecordTooLargeError,
    UnknownTopicError,
)


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """Where the broker stored a record."""

    topic: str
    partition: int
    offset: int
    latency: float  # seconds from send to acknowledgement


_Raw = tuple[str, int, int, float]  # a DeliveryResult's fields, as the report gave them

# One lock for every Delivery: held for a few instructions, never while calling out.
_LOCK = threading.Lock()
_PENDING, _OK, _FAILED = 0, 1, 2


class Delivery:
    """The pending delivery of one record: ``await`` it, or call :meth:`result`.

    Lighter than a ``concurrent.futures.Future`` (no condition variable unless someone
    blocks on it): one is made per record, so it is on the producer's hot path.
    """

    __slots__ = (
        "_callbacks",
        "_error",
        "_event",
        "_notify",
        "_result",
        "_sink",
        "_started",
        "_state",
        "_waiter",
    )

    def __init__(
        self,
        notify: Callable[[str, float], None] | None = None,
        sink: Callable[[Delivery], None] | None = None,
    ) -> None:
        self._state = _PENDING
        # A report's raw fields until result() is asked: most deliveries are only waited on.
        self._result: DeliveryResult | _Raw | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Delivery], None]] | None = None
        self._event: threading.Event | None = None
        self._notify = notify
        # Told of this delivery once it is settled, in the settling thread (the runtime's
        # hand-off to its event loop). The waiter is the loop's: see :meth:`watch`.
        self._sink = sink
        self._waiter: Callable[[Delivery], None] | None = None
        self._started = time.monotonic()

    @classmethod
    def completed(cls, result: DeliveryResult) -> Delivery:
        """A delivery that already succeeded (in-memory brokers, tests)."""
        delivery = cls()
        delivery._settle(result, None)
        return delivery

    @classmethod
    def failed(cls, error: BaseException) -> Delivery:
        """A delivery that already failed (fault injection in tests)."""
        delivery = cls()
        delivery._settle(None, error)
        return delivery

    def _report(self, err: KafkaError | None, msg: Any) -> None:
        """librdkafka's delivery report (producer thread)."""
        latency = time.monotonic() - self._started
        if err is not None:
            self._settle(None, map_error(err))
        else:
            self._settle((msg.topic(), msg.partition(), msg.offset(), latency), None)
        if self._notify is not None:
            self._notify("failed" if err is not None else "ok", latency)

    def _settle(self, result: DeliveryResult | _Raw | None, error: BaseException | None) -> None:
        with _LOCK:
            self._result, self._error = result, error
            self._state = _FAILED if error is not None else _OK
            callbacks, self._callbacks = self._callbacks, None
            event = self._event
        if event is not None:
            event.set()
        for fn in callbacks or ():
            fn(self)
        if self._sink is not None:
            self._sink(self)

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
        result = self._result
        assert result is not None
        if isinstance(result, tuple):
            result = self._result = DeliveryResult(*result)
        return result

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

    def watch(self, waiter: Callable[[Delivery], None]) -> bool:
        """For the sink's owner: have ``waiter(self)`` called where the sink is drained.

        No lock and no callback list: only the thread that drains the sink sets and runs
        the waiter (:meth:`run_waiter`), and it calls this only while the delivery is
        pending or its settling is not drained yet. False (nothing set) for a delivery
        with no sink or one watched already: the caller adds a done-callback instead.
        """
        if self._sink is None or self._waiter is not None:
            return False  # no sink, or watched already: a done-callback then
        self._waiter = waiter
        return True

    def run_waiter(self) -> None:
        """For the sink's owner, draining it: run the waiter :meth:`watch` set, once.

        None set: nobody waits, or the watcher saw the delivery settled already.
        """
        waiter, self._waiter = self._waiter, None
        if waiter is not None:
            waiter(self)

    def exception(self) -> BaseException | None:
        """The failure, once done; None on success or while pending."""
        return self._error


SourceKey = tuple[str, int]  # the (topic, partition) an emitted record came from


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What a bulk confirmation of emitted records found (``ctx.emit``, see
    :class:`~streamkit.producer.emitter.Emitter`).

    ``complete``: every record emitted before it was acknowledged or failed. ``failed``:
    for each source partition, the input offsets whose outputs failed, with the error.
    ``untraced``: the error of a failed record sent untraced (its input not known).
    """

    complete: bool
    failed: dict[SourceKey, dict[int, BaseException]]
    untraced: BaseException | None = None


CONFIRMED = Confirmation(True, {})  # nothing emitted, or every record acknowledged


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
