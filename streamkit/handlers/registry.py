"""The :class:`Router`: a group of handlers keyed by event type, and the ``@handler`` decorator."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, TypeVar, Unpack

from streamkit.errors import ConfigError
from streamkit.handlers.middleware import Middleware
from streamkit.handlers.signature import Decoder, describe, inspect_handler, make_decoder
from streamkit.retry.policy import RetryPolicy
from streamkit.retry.topics import TopicNames

Ordering = Literal["key", "partition", "unordered"]


class HandlerOptions(TypedDict, total=False):
    """Keyword options of ``@handler`` (see :meth:`Router.handler`)."""

    retry: RetryPolicy | None
    ordering: Ordering | None
    timeout: float | None
    blocking: bool
    envelope: bool
    keep_key_order: bool
    max_inflight: int | None


F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True, eq=False)
class HandlerSpec:
    """Everything the runtime needs to call one handler."""

    event_type: str
    fn: Callable[..., Any]
    is_async: bool
    wants_ctx: bool
    decode: Decoder
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
    dead-letters them; ``"skip"`` drops them, still counted and logged.
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
    ) -> None:
        if on_unknown not in ("dlq", "skip"):
            raise ConfigError(f"on_unknown must be 'dlq' or 'skip', got {on_unknown!r}")
        self.topics: list[str] = list(topics)
        self.default_retry = retry or RetryPolicy()
        self.on_unknown = on_unknown
        self.middleware: list[Middleware] = list(middleware)
        self.topic_names = topic_names or TopicNames()
        self.publish_topics: dict[str, str] = dict(publish_topics or {})
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
        """

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
        spec = HandlerSpec(
            event_type=event_type,
            fn=fn,
            is_async=sig.is_async,
            wants_ctx=sig.wants_ctx,
            decode=make_decoder(sig, envelope=envelope),
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
