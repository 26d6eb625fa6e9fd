"""One exception tree for streamkit.

Three families:

* :class:`PermanentError` -- bad input that no retry can fix (the record goes to the
  dead-letter topic at once): :class:`DecodeError`, :class:`SchemaError`,
  :class:`UnknownEventType`.
* control flow raised by handlers: :class:`Retry` (ask for a retry after ``delay``) and
  :class:`Skip` (drop this event on purpose; it is counted, not dead-lettered).
* operational errors: configuration, producer delivery, broker reachability.
* :class:`TransientDependencyError` -- a service the event needs is down: the event is
  held in place and tried again (never retried through the tiers, never dead-lettered).

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


class TransientDependencyError(StreamkitError):
    """A service the event needs did not answer *now*: not the event's fault.

    Raise it (or a subclass) from a decoder, a middleware or a handler when a dependency
    (the schema registry, a dedupe store) is down or slow. The event is **held**, never
    retried through the retry tiers and never dead-lettered: it keeps its place in its
    ordering lane, its offset is not committed, and it is tried again in-process with
    capped exponential backoff (0.1 s to 5 s) until the dependency answers. Shutdown or a
    rebalance leaves it uncommitted, so the next owner handles it again.

    ``dependency`` names the service (the ``dependency`` label of
    ``streamkit_waiting_on_dependency``); events waiting on one service share its backoff.
    """

    dependency = "dependency"

    def __init__(self, message: str, dependency: str | None = None) -> None:
        super().__init__(message)
        if dependency is not None:
            self.dependency = dependency


class TransientDecodeError(TransientDependencyError):
    """A record could not be decoded *now* because a service it needs did not answer.

    Not bad input: the schema registry being down or slow must not dead-letter good
    records. The record is held (see :class:`TransientDependencyError`) and decoded again
    once the service answers.
    """

    dependency = "decoder"
