"""One exception tree for streamkit.

Three families:

* :class:`PermanentError` -- bad input that no retry can fix (the record goes to the
  dead-letter topic at once): :class:`DecodeError`, :class:`SchemaError`,
  :class:`UnknownEventType`.
* control flow raised by handlers: :class:`Retry` (ask for a retry after ``delay``) and
  :class:`Skip` (drop this event on purpose; it is counted, not dead-lettered).
* operational errors: configuration, producer delivery, broker reachability.

Any other exception raised by a handler is retryable unless its retry policy says otherwise.
"""

from __future__ import annotations


class StreamkitError(Exception):
    """Base class of every error streamkit raises."""


class PermanentError(StreamkitError):
    """An event that can never be handled as it is; it goes straight to the DLQ.

    ``raw`` keeps the record value exactly as received so nothing is lost.
    """

    def __init__(self, message: str, raw: bytes | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class DecodeError(PermanentError):
    """The record value is not a decodable envelope (not JSON, not UTF-8, empty, null)."""


class SchemaError(PermanentError):
    """The record decoded but does not match the handler's model."""


class UnknownEventType(PermanentError):
    """No handler is registered for the record's event type (or it has none)."""


class ConfigError(StreamkitError):
    """Invalid settings, handler signatures or topology; raised at startup, never mid-stream."""


class MissingTopicsError(ConfigError):
    """Topics the service needs (sources, retry tiers, DLQ) do not exist on the cluster."""

    DEFAULT_HINT = (
        "create a source topic with `streamkit topics create NAME --partitions N`, "
        "retry tiers and DLQ with `streamkit topics ensure MODULE --group G`"
    )

    def __init__(self, missing: list[str], hint: str = DEFAULT_HINT) -> None:
        super().__init__("missing topics: " + ", ".join(sorted(missing)) + f" ({hint})")
        self.missing = sorted(missing)


class AccessDeniedError(ConfigError):
    """The cluster refused us: authentication, TLS verification or a missing ACL."""


class BrokerUnavailableError(StreamkitError):
    """No broker answered within the configured bound."""


class TransactionFencedError(StreamkitError):
    """Exactly-once mode: another process took over this transactional id (or the broker
    fenced this producer). The worker stops: it must never produce outside a transaction."""


class ProducerError(StreamkitError):
    """A publish failed; ``retriable`` tells whether sending again may succeed."""

    retriable: bool = False


class RecordTooLargeError(ProducerError):
    """The record exceeds ``message.max.bytes``; rejected locally, nothing was sent."""


class UnknownTopicError(ProducerError):
    """The target topic does not exist (and auto-creation is off)."""


class DeliveryTimeoutError(ProducerError):
    """The broker did not acknowledge the record within ``message.timeout.ms``."""

    retriable = True


class DeliveryFailedError(ProducerError):
    """Any other delivery failure reported by the client."""


class ProducerClosedError(ProducerError):
    """``publish`` was called after ``close``."""


class Retry(Exception):
    """Raise from a handler to have the event retried after ``delay`` seconds.

    The attempt still counts against the handler's ``max_attempts``.
    """

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        # Rejected here, where the bad value is raised: a NaN or negative delay would
        # otherwise fail later, while the event's outcome is being settled.
        if delay is not None and not (isinstance(delay, int | float) and 0 <= delay < 1e9):
            raise ValueError(f"Retry(delay=) must be a number of seconds >= 0, got {delay!r}")
        super().__init__(reason)
        self.delay = delay


class Skip(Exception):
    """Raise from a handler to drop this event on purpose (counted as ``skipped``)."""


class TransientDecodeError(StreamkitError):
    """A record could not be decoded *now* because a service it needs did not answer.

    Not bad input: the schema registry being down or slow must not dead-letter good
    records. The router turns it into a handler failure, so the record takes its handler's
    retry path (a retry tier with backoff) and is decoded again later.
    """
