"""The :class:`Router`: a group of handlers keyed by event type, and the ``@handler`` decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypedDict, TypeVar, Unpack

from streamkit.codecs.base import Codec, Decoder, Target
from streamkit.codecs.json import BARE_JSON, JSON_ENVELOPE
from streamkit.errors import ConfigError
from streamkit.handlers.middleware import Middleware
from streamkit.handlers.routing import CATCH_ALL, UNKNOWN_EVENT_TYPE, resolve
from streamkit.handlers.signature import describe, inspect_handler
from streamkit.record import Headers, Record
from streamkit.retry.policy import RetryPolicy
from streamkit.retry.topics import TopicNames

Ordering = Literal["key", "partition", "unordered"]
__all__ = [
    "CATCH_ALL",
    "UNKNOWN_EVENT_TYPE",
    "HandlerOptions",
    "HandlerSpec",
    "Router",
    "configure",
    "default_router",
    "handler",
]


class HandlerOptions(TypedDict, total=False):
    """Keyword options of ``@handler`` (see :meth:`Router.handler`)."""

    retry: RetryPolicy | None
    ordering: Ordering | None
    timeout: float | None
    blocking: bool
    envelope: bool
    codec: Codec | None
    keep_key_order: bool
    max_inflight: int | None


_OPTION_NAMES = tuple(HandlerOptions.__annotations__)
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True, eq=False)
class HandlerSpec:
    """Everything the runtime needs to call one handler."""

    event_type: str
    fn: Callable[..., Any]
    is_async: bool
    wants_ctx: bool
    decode: Decoder
    codec: Codec
    retry: RetryPolicy
    ordering: Ordering
    timeout: float | None
    blocking: bool
    keep_key_order: bool
    max_inflight: int | None = None
    topic: str | None = None  # a topic handler: every record of this topic
    # Derived once (read per event, where a property would be a call each time):
    # ``plain``, a sync handler of the payload alone, the runtime's fastest path;
    # ``inline``, a sync handler that may run on the loop thread the moment its record
    # arrives; ``awaited_directly``, an async handler with nothing around the call (no
    # thread, no timeout): its task awaits it as it is.
    plain: bool = field(init=False)
    inline: bool = field(init=False)
    awaited_directly: bool = field(init=False)

    def __post_init__(self) -> None:
        inline = not (self.is_async or self.blocking or self.keep_key_order)
        object.__setattr__(self, "inline", inline)
        object.__setattr__(self, "plain", inline and not self.wants_ctx)
        direct = self.is_async and not self.blocking and self.timeout is None
        object.__setattr__(self, "awaited_directly", direct)

    @property
    def name(self) -> str:
        """``module.qualname`` of the handler function."""
        return describe(self.fn)


class Router:
    """A group of handlers, plus the topics they consume and the defaults they share.

    ``on_unknown`` decides what happens to events no handler claims: ``"dlq"`` (default)
    dead-letters them; ``"skip"`` drops them, still counted and logged. ``codec`` is the
    wire format of its records (default: the JSON envelope, see :mod:`streamkit.codecs`).
    """

    def __init__(
        self,
        *,
        topics: Iterable[str] = (),
        retry: RetryPolicy | None = None,
        on_unknown: Literal["dlq", "skip"] = "dlq",
        middleware: Iterable[Middleware] = (),
        topic_names: TopicNames | None = None,
        publish_topics: dict[str, str] | None = None,
        codec: Codec | None = None,
    ) -> None:
        if on_unknown not in ("dlq", "skip"):
            raise ConfigError(f"on_unknown must be 'dlq' or 'skip', got {on_unknown!r}")
        self.topics: list[str] = list(topics)
        self.default_retry = retry or RetryPolicy()
        self.on_unknown = on_unknown
        self.middleware: list[Middleware] = list(middleware)
        self.topic_names = topic_names or TopicNames()
        self.publish_topics: dict[str, str] = dict(publish_topics or {})
        self.codec: Codec = codec or JSON_ENVELOPE
        self._handlers: dict[str, HandlerSpec] = {}  # by event type; CATCH_ALL for the rest
        self._by_topic: dict[str, HandlerSpec] = {}  # every record of a topic

    def handler(
        self,
        event_type: str | None = None,
        *,
        topic: str | None = None,
        **options: Unpack[HandlerOptions],
    ) -> Callable[[F], F]:
        """Register the decorated function for ``event_type``.

        ``"*"`` is the catch-all: events of a type no other handler claims (and records
        with no type at all). ``topic="payments"`` takes every record of that topic
        whatever its type -- a topic you do not own, with no ``event_type`` anywhere; the
        topic is added to the router's topics.

        ``ordering``: ``"key"`` (default) runs events of one key one at a time, in offset
        order; ``"partition"`` runs a partition strictly in order; ``"unordered"`` gives up
        order for concurrency. ``timeout`` (seconds) cancels a slow async handler and counts
        as a failure. ``blocking=True`` runs a sync handler in a bounded thread pool.
        ``envelope=False`` for bare payloads routed by the ``event_type`` header.
        ``keep_key_order=True`` parks later events of a key behind one waiting in a retry tier.
        ``max_inflight`` caps this handler's concurrent runs (within the process-wide cap).
        ``codec`` decodes this handler's records with another wire format than the router's.
        """
        unknown = sorted(set(options) - set(_OPTION_NAMES))

        def register(fn: F) -> F:
            if unknown:  # named here, where the function is known
                raise ConfigError(
                    f"handler {describe(fn)}: unknown @handler option {', '.join(unknown)}; "
                    f"valid options: topic, {', '.join(_OPTION_NAMES)}"
                )
            self.add(event_type, fn, topic=topic, **options)
            return fn

        return register

    def add(
        self,
        event_type: str | None,
        fn: Callable[..., Any],
        *,
        topic: str | None = None,
        retry: RetryPolicy | None = None,
        ordering: Ordering | None = None,
        timeout: float | None = None,
        blocking: bool = False,
        envelope: bool = True,
        codec: Codec | None = None,
        keep_key_order: bool = False,
        max_inflight: int | None = None,
    ) -> HandlerSpec:
        """Register ``fn`` for ``event_type`` or ``topic`` (the non-decorator form)."""
        label = _route_label(fn, event_type, topic)
        table = self._by_topic if topic else self._handlers
        key = topic or label
        existing = table.get(key)
        if existing is not None:
            what = f"topic {topic!r}" if topic else f"event type {label!r}"
            raise ConfigError(f"two handlers for {what}: {existing.name} and {describe(fn)}")
        sig = inspect_handler(fn)
        _check_options(fn, sig.is_async, ordering, timeout, blocking)
        codec = codec or (self.codec if envelope else BARE_JSON)
        spec = HandlerSpec(
            event_type=label,
            fn=fn,
            is_async=sig.is_async,
            wants_ctx=sig.wants_ctx,
            decode=codec.decoder(sig.target),
            codec=codec,
            retry=retry or self.default_retry,
            ordering=ordering or "key",
            timeout=timeout,
            blocking=blocking,
            keep_key_order=keep_key_order,
            max_inflight=max_inflight,
            topic=topic,
        )
        table[key] = spec
        if topic and topic not in self.topics:
            self.topics.append(topic)
        return spec

    def derived_topics(self, sources: Iterable[str], group: str) -> dict[str, str]:
        """Every retry tier and DLQ of ``sources`` for ``group``, mapped to its source."""
        return {
            name: source
            for source in sources
            for name in self.topic_names.all_for(source, group, self.retry_tiers)
        }

    def include(self, other: Router) -> None:
        """Add every handler and topic of ``other`` to this router."""
        for spec in other.handlers():
            table = self._by_topic if spec.topic else self._handlers
            key = spec.topic or spec.event_type
            if key in table:
                raise ConfigError(f"two handlers for {key!r}: {table[key].name} and {spec.name}")
            table[key] = spec
        self.topics.extend(t for t in other.topics if t not in self.topics)
        self.middleware.extend(other.middleware)
        self.publish_topics.update(other.publish_topics)

    def resolve(
        self, record: Record, headers: Headers | None, source: str | None = None
    ) -> tuple[HandlerSpec, str, Any, str | None] | None:
        """Route and decode ``record``: (handler, event type, payload, event id).

        ``source`` is the topic the record belongs to (a retry tier's source topic), for
        topic handlers. None when no handler claims the record and ``on_unknown`` is
        ``"skip"``; a :class:`~streamkit.errors.PermanentError` with the raw bytes for bad
        input. ``headers`` are the record's, read once by the caller.
        """
        return resolve(self, record, headers, source)

    def deferred(self, spec: HandlerSpec | None, exc: Exception) -> HandlerSpec:
        """A stand-in for ``spec`` that raises ``exc``: a record that could not be decoded
        yet (a :class:`~streamkit.errors.TransientDecodeError`) is held in place by the
        consumer and decoded again; ``spec`` (else the catch-all) gives its lane."""

        def wait_for_decoder(payload: Any) -> None:
            raise exc

        base = spec or self.get(CATCH_ALL)
        if base is not None:
            return replace(
                base, fn=wait_for_decoder, is_async=False, wants_ctx=False, blocking=False
            )
        return HandlerSpec(
            event_type=UNKNOWN_EVENT_TYPE,
            fn=wait_for_decoder,
            is_async=False,
            wants_ctx=False,
            decode=self.codec.decoder(Target("bytes")),
            codec=self.codec,
            retry=self.default_retry,
            ordering="key",
            timeout=None,
            blocking=False,
            keep_key_order=False,
        )

    def by_header(self) -> dict[bytes | None, HandlerSpec]:
        """``event_type`` header bytes -> handler, for the dispatcher's hot paths.

        None at all when a topic handler exists (it claims its topic's records whatever
        their header says), and never the catch-all: for the records it names, a lookup
        here is exactly what :meth:`resolve` would find.
        """
        if self._by_topic:
            return {}
        return {t.encode(): spec for t, spec in self._handlers.items() if t != "*"}

    def get(self, event_type: str) -> HandlerSpec | None:
        """The handler for ``event_type``, or None."""
        return self._handlers.get(event_type)

    def for_topic(self, topic: str) -> HandlerSpec | None:
        """The handler of every record of ``topic``, or None."""
        return self._by_topic.get(topic)

    def handlers(self) -> list[HandlerSpec]:
        """Every registered handler."""
        return [*self._handlers.values(), *self._by_topic.values()]

    @property
    def retry_tiers(self) -> int:
        """How many retry-tier topics the handlers need: max ``max_attempts`` minus one."""
        attempts = [s.retry.max_attempts for s in self.handlers()]
        return max(attempts, default=1) - 1

    def __len__(self) -> int:
        return len(self._handlers) + len(self._by_topic)


def _route_label(fn: Callable[..., Any], event_type: str | None, topic: str | None) -> str:
    """The handler's event type label (metrics, logs): its type, or its topic's name."""
    if topic is not None and not topic:
        raise ConfigError(f"handler {describe(fn)}: topic must be a non-empty string")
    label = event_type or topic
    if not label:
        raise ConfigError(f"handler {describe(fn)}: give an event type or topic=")
    return label


def _check_options(
    fn: Callable[..., Any],
    is_async: bool,
    ordering: Ordering | None,
    timeout: float | None,
    blocking: bool,
) -> None:
    if ordering not in (None, "key", "partition", "unordered"):
        raise ConfigError(f"handler {describe(fn)}: unknown ordering {ordering!r}")
    if blocking and is_async:
        raise ConfigError(f"handler {describe(fn)}: blocking=True is for sync handlers only")
    if timeout is not None and (timeout <= 0 or not is_async):
        raise ConfigError(
            f"handler {describe(fn)}: timeout= needs an async handler and a positive value"
        )


default_router = Router()


handler = default_router.handler
"""Register a handler on the default router (see :meth:`Router.handler`)."""


def configure(
    *,
    topics: Iterable[str] | None = None,
    on_unknown: Literal["dlq", "skip"] | None = None,
    publish_topics: dict[str, str] | None = None,
    retry: RetryPolicy | None = None,
    middleware: Iterable[Middleware] | None = None,
    codec: Codec | None = None,
    router: Router | None = None,
) -> Router:
    """Set what ``Router(...)`` would, for module-level ``@handler`` functions.

    Call it at the top of your handlers module, before the handlers::

        streamkit.configure(topics=["payments"], on_unknown="skip",
                            publish_topics={"receipt.requested": "receipts"})

    ``retry`` applies to the handlers registered after the call. Returns the router.
    """
    target = router or default_router
    if on_unknown is not None:
        if on_unknown not in ("dlq", "skip"):
            raise ConfigError(f"on_unknown must be 'dlq' or 'skip', got {on_unknown!r}")
        target.on_unknown = on_unknown
    if topics is not None:
        target.topics.extend(t for t in topics if t not in target.topics)
    if publish_topics is not None:
        target.publish_topics.update(publish_topics)
    if retry is not None:
        target.default_retry = retry
    if middleware is not None:
        target.middleware.extend(middleware)
    if codec is not None:
        target.codec = codec
    return target
