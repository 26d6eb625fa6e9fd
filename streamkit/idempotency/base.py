"""The :class:`Dedupe` middleware and the one small protocol its stores implement.

``Dedupe(store)`` in a router's middleware runs each handler at most once per dedupe key
(the envelope's ``event_id`` unless ``key=`` says otherwise). A duplicate is not handed to
the handler: it is counted (``streamkit_duplicates_skipped_total``), logged at DEBUG and
finishes as ``skipped``, so its offset is committed like any event done.

A store that does not answer is not bad input: its operations raise
:class:`StoreUnavailableError`, and the middleware holds the event *in its scope* --
retrying with capped exponential backoff, a WARNING line when the outage starts (repeated
every 30 s while it lasts) and one when it ends,
``streamkit_dedupe_store_errors_total`` per failed try -- so its offset stays
uncommitted and nothing is dead-lettered. The wait ends when the store answers again, or
when the task is cancelled (shutdown past its bound, a revoked partition): the event is
then not done, and is handled again by the next owner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import structlog

from streamkit.errors import Skip, TransientDependencyError
from streamkit.handlers.middleware import CallNext, CallNextSync, Middleware

if TYPE_CHECKING:
    from streamkit.handlers.context import Context

__all__ = [
    "Backoff",
    "Dedupe",
    "DedupeStore",
    "DuplicateEvent",
    "Hold",
    "KeyFunction",
    "StoreUnavailableError",
]

log = structlog.get_logger("streamkit.idempotency")
T = TypeVar("T")
LOG_EVERY = 30.0  # seconds between "store unavailable" lines while it stays down
KeyFunction = Callable[["Context"], "str | None"]


class StoreUnavailableError(TransientDependencyError):
    """The dedupe store (Redis, PostgreSQL) did not answer: a transient dependency, not bad
    input, never dead-lettered. :class:`Dedupe` retries the store operation inside its
    scope rather than handing the event to the dispatcher's hold (consumer/hold.py): a
    mark written after the handler ran must be retried alone, not with the handler."""

    dependency = "dedupe-store"


class DuplicateEvent(Skip):
    """An event whose key was already handled: skipped, counted, offset committed."""


class Hold(Protocol):
    """Run a store operation until it stops raising :class:`StoreUnavailableError`."""

    async def __call__(self, op: Callable[[], Awaitable[T]]) -> T: ...


class DedupeStore(Protocol):
    """Where handled keys are remembered. ``name`` labels the metrics (``memory`` ...).

    A store holding connections may also have ``async close()``: called when the worker
    stops (it must be usable again by a later start).
    """

    name: str

    async def run_once(self, ctx: Context, key: str, call: CallNext, hold: Hold) -> bool:
        """Run ``call`` (the handler) unless ``key`` was handled; False for a duplicate.

        Every store operation goes through ``hold``; the handler's own exception passes
        through unchanged and leaves ``key`` unmarked (the retry runs the handler again).
        """
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Waits between tries while the store is down: ``initial`` doubling up to ``cap`` s."""

    initial: float = 0.1
    cap: float = 5.0

    def delays(self) -> Iterable[float]:
        """The waits, forever: the event is held until the store answers."""
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * 2, self.cap)


def event_id_key(ctx: Context) -> str | None:
    """The default dedupe key: the envelope's ``event_id`` (None: not deduped)."""
    return ctx.event_id


class Dedupe(Middleware):
    """Run each handler at most once per key; see the module docstring.

    ``key(ctx)`` gives the dedupe key (default: ``ctx.event_id``; for bare payloads read
    ``ctx.payload`` or a header). An event whose key is None runs as usual.
    ``event_types`` limits deduping to those handlers (default: every handler).
    """

    def __init__(
        self,
        store: DedupeStore,
        *,
        key: KeyFunction = event_id_key,
        event_types: Iterable[str] | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.event_types = frozenset(event_types) if event_types is not None else None
        self.backoff = backoff or Backoff()
        self._metrics: Any = None
        self._group = ""
        # A store with no I/O (memory) has a sync form: sync handlers then skip the task.
        self.sync_scope = callable(getattr(store, "run_once_sync", None))
        self._down = False  # the store failed and has not answered since
        self._logged = 0.0  # when the last "unavailable" line was written (monotonic)

    def bind(self, metrics: Any, group: str) -> None:
        """Count into the worker's metrics (primed here: zero before the first event)."""
        self._metrics, self._group = metrics, group
        metrics.dedupe_store_errors.labels(group, self.store.name)

    async def close(self) -> None:
        """Close the store's connections (the worker stopped); a later start reopens them."""
        close = getattr(self.store, "close", None)
        if close is not None:
            await close()

    async def handle(self, ctx: Context, call_next: CallNext) -> None:
        """Skip a duplicate, else run the handler and have the store remember its key."""
        if self.event_types is not None and ctx.event_type not in self.event_types:
            await call_next()
            return
        key = self.key(ctx)
        if key is None:
            await call_next()
            return
        if not await self.store.run_once(ctx, key, call_next, self._hold):
            self._duplicate(ctx, key)

    def handle_sync(self, ctx: Context, call_next: CallNextSync) -> None:
        """:meth:`handle` for plain sync handlers, with a store that has ``run_once_sync``."""
        key = None if self._exempt(ctx) else self.key(ctx)
        if key is None:
            call_next()
        elif not self.store.run_once_sync(ctx, key, call_next):  # type: ignore[attr-defined]
            self._duplicate(ctx, key)

    def _exempt(self, ctx: Context) -> bool:
        return self.event_types is not None and ctx.event_type not in self.event_types

    def _duplicate(self, ctx: Context, key: str) -> None:
        if self._metrics is not None:
            m = self._metrics
            m.child(m.duplicates_skipped, self._group, ctx.topic, ctx.event_type).inc()
        log.debug("duplicate skipped", key=key, topic=ctx.topic, offset=ctx.offset)
        raise DuplicateEvent(f"duplicate of {key}")

    async def _hold(self, op: Callable[[], Awaitable[T]]) -> T:
        failures = 0
        for delay in self.backoff.delays():  # pragma: no branch - endless
            try:
                result = await op()
            except StoreUnavailableError as exc:
                failures += 1
                self._store_error(exc, failures, delay)
                await asyncio.sleep(delay)  # cancelled at shutdown: the event is not done
                continue
            if failures and self._down:
                self._down = False  # one line for the whole outage, not one per event
                log.warning("dedupe store back; held events go on", store=self.store.name)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _store_error(self, exc: StoreUnavailableError, failures: int, delay: float) -> None:
        if self._metrics is not None:
            m = self._metrics
            m.child(m.dedupe_store_errors, self._group, self.store.name).inc()
        # One line when the outage starts, then one per LOG_EVERY seconds: not one per event
        # held (a thousand events in flight would write a thousand lines per try).
        now = time.monotonic()
        if not self._down or now - self._logged >= LOG_EVERY:
            self._down, self._logged = True, now
            log.warning("dedupe store unavailable; holding events (offsets not committed)",
                        store=self.store.name, error=str(exc), retry_in_s=delay,
                        failed_tries=failures)  # fmt: skip
