"""The :class:`Router`: a group of handlers keyed by event type, and the ``@handler`` decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, TypeVar, Unpack

from streamkit.codecs.base import NOT_PARSED, Codec, Decoder
from streamkit.codecs.json import BARE_JSON, JSON_ENVELOPE
from streamkit.envelope import HEADER_EVENT_TYPE, header_str
from streamkit.errors import ConfigError, DecodeError, UnknownEventType
from streamkit.handlers.middleware import Middleware
from streamkit.handlers.signature import describe, inspect_handler
from streamkit.record import Headers, Record
from streamkit.retry.policy import RetryPolicy
from streamkit.retry.topics import TopicNames

Ordering = Literal["key", "partition", "unordered"]
# The ``event_type`` metric label of events no handler claims: one constant instead of the
# raw header keeps a producer bug from creating unbounded series.
UNKNOWN_EVENT_TYPE = "__unknown__"


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

    @property
    def plain(self) -> bool:
        """A sync handler of the payload alone: the runtime's fastest path."""
        return not (self.is_async or self.blocking or self.wants_ctx or self.keep_key_order)

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
        self._handlers: dict[str, HandlerSpec] = {}

    def handler(self, event_type: str, **options: Unpack[HandlerOptions]) -> Callable[[F], F]:
        """Register the decorated function for ``event_type``.

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
        if unknown:
            raise ConfigError(
                f"@handler({event_type!r}): unknown option {', '.join(unknown)}; "
                f"valid options: {', '.join(_OPTION_NAMES)}"
            )

        def register(fn: F) -> F:
            self.add(event_type, fn, **options)
            return fn

        return register

    def add(
        self,
        event_type: str,
        fn: Callable[..., Any],
        *,
        retry: RetryPolicy | None = None,
        ordering: Ordering | None = None,
        timeout: float | None = None,
        blocking: bool = False,
        envelope: bool = True,
        codec: Codec | None = None,
        keep_key_order: bool = False,
        max_inflight: int | None = None,
    ) -> HandlerSpec:
        """Register ``fn`` for ``event_type`` (the non-decorator form)."""
        if not event_type:
            raise ConfigError(f"handler {describe(fn)}: event_type must be a non-empty string")
        existing = self._handlers.get(event_type)
        if existing is not None:
            raise ConfigError(
                f"two handlers for event type {event_type!r}: {existing.name} and {describe(fn)}"
            )
        sig = inspect_handler(fn)
        _check_options(fn, sig.is_async, ordering, timeout, blocking)
        codec = codec or (self.codec if envelope else BARE_JSON)
        spec = HandlerSpec(
            event_type=event_type,
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
        )
        self._handlers[event_type] = spec
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
            if spec.event_type in self._handlers:
                raise ConfigError(
                    f"two handlers for event type {spec.event_type!r}: "
                    f"{self._handlers[spec.event_type].name} and {spec.name}"
                )
            self._handlers[spec.event_type] = spec
        self.topics.extend(t for t in other.topics if t not in self.topics)
        self.middleware.extend(other.middleware)
        self.publish_topics.update(other.publish_topics)

    def resolve(
        self, record: Record, headers: Headers | None
    ) -> tuple[HandlerSpec, str, Any, str | None] | None:
        """Route and decode ``record``: (handler, event type, payload, event id).

        None when no handler claims the type and ``on_unknown`` is ``"skip"``. Raises a
        :class:`~streamkit.errors.PermanentError` (with the raw bytes) for bad input.
        ``headers`` are the record's, read once by the caller.
        """
        value = record.value()
        if not value:
            raise DecodeError(
                "null value (tombstone)" if value is None else "empty value", raw=value
            )
        event_type = header_str(headers, HEADER_EVENT_TYPE)
        parsed: Any = NOT_PARSED
        if event_type is None:
            event_type, parsed = self.codec.route(value)
            if event_type is None:
                raise UnknownEventType("record has no event_type header or field", raw=value)
        spec = self._handlers.get(event_type)
        if spec is None:
            if self.on_unknown == "skip":
                return None
            raise UnknownEventType(f"no handler for event type {event_type!r}", raw=value)
        if parsed is not NOT_PARSED and spec.codec.family != self.codec.family:
            parsed = NOT_PARSED  # parsed as another format: the handler's codec parses it
        payload, event_id = spec.decode(value, parsed)
        return spec, event_type, payload, event_id

    def get(self, event_type: str) -> HandlerSpec | None:
        """The handler for ``event_type``, or None."""
        return self._handlers.get(event_type)

    def handlers(self) -> list[HandlerSpec]:
        """Every registered handler."""
        return list(self._handlers.values())

    @property
    def retry_tiers(self) -> int:
        """How many retry-tier topics the handlers need: max ``max_attempts`` minus one."""
        attempts = [s.retry.max_attempts for s in self._handlers.values()]
        return max(attempts, default=1) - 1

    def __len__(self) -> int:
        return len(self._handlers)


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
