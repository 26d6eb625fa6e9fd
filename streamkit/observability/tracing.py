"""OpenTelemetry tracing: a ``process`` span per handler call, a ``send`` span per record sent.

Needs the ``streamkit[otel]`` extra; nothing here is imported unless you ask for it, so a
service without tracing pays nothing. Enable it in code with
``Router(middleware=[Tracing()])`` (spans go to the global tracer provider), or for
``streamkit run`` with ``STREAMKIT_TRACING=otlp`` and the standard ``OTEL_*`` variables
(:func:`middleware_from_env`).

Spans follow the OpenTelemetry messaging conventions for Kafka: named
``"{operation} {topic}"`` (``process orders``, ``send invoices``), kind CONSUMER/PRODUCER,
with ``messaging.system=kafka``, ``messaging.destination.name``,
``messaging.destination.partition.id``, ``messaging.consumer.group.name``,
``messaging.kafka.message.key``, ``messaging.kafka.offset``, ``messaging.operation.name`` /
``.type`` and ``error.type`` on failure, plus ``streamkit.attempt``.

Context travels in W3C ``traceparent`` / ``tracestate`` / ``baggage`` record headers:

- ``ctx.publish`` injects a ``send`` span, a child of the handler's span (or of the current
  span inside it).
- A retry-tier or dead-letter record gets a ``send`` span, a child of the failed attempt's
  ``process`` span, and the failed span itself in ``streamkit-failed-traceparent``: the
  next attempt is a child of that send span and *links* the failed attempt, so every
  attempt is in the one trace. ``streamkit replay`` keeps both headers (it strips only
  the failure headers), so a replayed dead letter continues the trace as well.
- The producer's context: ``link_mode="parent"`` (default) makes the ``process`` span its
  child. The conventions allow the parent when one message is processed, which is what a
  handler call is (links are for batches, where one span has many producers), and the
  parent is what puts request, handler and follow-up events in one trace in every backend.
  ``link_mode="link"`` starts a new trace per event with a link to the producer's span,
  for very fan-out-heavy flows; retries and replays still continue their own trace.

Log lines written while a span is current carry ``trace_id`` and ``span_id``: the
:func:`add_trace_ids` structlog processor, which ``streamkit run``'s logging setup runs
(add it to your own structlog processors if you configure structlog yourself).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import structlog

from streamkit import envelope as env
from streamkit.errors import ConfigError, Skip
from streamkit.handlers.middleware import CallNext, CallNextSync, Middleware
from streamkit.observability.stats import EXEMPLAR_TRACE_ID
from streamkit.record import Headers, OutgoingRecord
from streamkit.retry.failures import error_message

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.baggage.propagation import W3CBaggagePropagator
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.propagators.textmap import Getter, Setter, TextMapPropagator
    from opentelemetry.trace import Link, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ConfigError(
        "tracing needs the OpenTelemetry packages: pip install 'streamkit[otel]'"
    ) from exc

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.trace import Span, Tracer, TracerProvider

    from streamkit.handlers.context import Context

__all__ = [
    "DEFAULT_ROOT_RATIO",
    "H_FAILED_TRACEPARENT",
    "Tracing",
    "add_trace_ids",
    "default_sampler",
    "middleware_from_env",
    "traced_headers",
]

LinkMode = Literal["parent", "link"]
log = structlog.get_logger("streamkit.tracing")

# The span of the attempt that failed, on retry-tier and dead-letter records (traceparent
# format). Not a failure header: replay keeps it, so the replayed record links the failure.
H_FAILED_TRACEPARENT = "streamkit-failed-traceparent"
# STREAMKIT_TRACING=otlp without OTEL_TRACES_SAMPLER: the share of new traces sampled.
DEFAULT_ROOT_RATIO = 0.01
_STATE_CONTEXT = "otel.context"  # ctx.state key: the handler call's OpenTelemetry context
_SPAN_ERROR_CHARS = 200
_W3C = CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
_TRACEPARENT = TraceContextTextMapPropagator()
_EMPTY = otel_context.Context()


class _HeaderGetter(Getter[Headers]):
    """Read W3C fields from Kafka record headers (a list of (name, bytes) pairs)."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k == key and v is not None]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


class _HeaderSetter(Setter[Headers]):
    """Write a W3C field, replacing any earlier value (a retry record carries the old one)."""

    def set(self, carrier: Headers, key: str, value: str) -> None:
        _drop(carrier, key)
        carrier.append((key, value.encode("latin-1")))


_GET = _HeaderGetter()
_SET = _HeaderSetter()


def _drop(headers: Headers, key: str) -> None:
    headers[:] = [(k, v) for k, v in headers if k != key]


def _key_text(key: bytes | None) -> str | None:
    """The record key as the conventions want it: its text, or nothing if it is not text."""
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


def _sampling_attributes(ctx: Context) -> dict[str, Any]:
    """What a sampler may look at: the attributes the conventions want at span creation."""
    return {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": ctx.topic,
        "messaging.consumer.group.name": ctx.group,
        "streamkit.event_type": ctx.event_type,
    }


def _recorded_attributes(ctx: Context) -> dict[str, Any]:
    """The rest, set only on a span that records: most spans of a sampled service do not,
    and building and validating these costs more than the unsampled span itself."""
    attrs: dict[str, Any] = {
        "messaging.operation.name": "process",
        "messaging.destination.partition.id": str(ctx.partition),
        "messaging.kafka.offset": ctx.offset,
        "streamkit.attempt": ctx.attempt,
    }
    key = _key_text(ctx.key)
    if key is not None:
        attrs["messaging.kafka.message.key"] = key
    if ctx.event_id:
        attrs["messaging.message.id"] = ctx.event_id
    return attrs


def _send_attributes(record: OutgoingRecord) -> dict[str, Any]:
    attrs: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": record.topic,
        "streamkit.record.kind": record.kind,
    }
    if record.partition is not None:
        attrs["messaging.destination.partition.id"] = str(record.partition)
    key = _key_text(record.key)
    if key is not None:
        attrs["messaging.kafka.message.key"] = key
    if record.event_type is not None:
        attrs["streamkit.event_type"] = record.event_type
    attempt = env.header_int(record.headers, env.H_ATTEMPT)
    if record.kind == "retry" and attempt is not None:
        attrs["streamkit.attempt"] = attempt  # the attempt this record will be
    return attrs


def _failed_span_context(headers: Headers) -> trace.SpanContext | None:
    """The failed attempt's span named by ``streamkit-failed-traceparent``, if any."""
    raw = [v.decode("latin-1") for k, v in headers if k == H_FAILED_TRACEPARENT]
    if not raw:
        return None
    extracted = _TRACEPARENT.extract({"traceparent": raw[-1]})
    span_context = trace.get_current_span(extracted).get_span_context()
    return span_context if span_context.is_valid else None


def _traceparent(span_context: trace.SpanContext) -> str:
    flags = int(span_context.trace_flags)
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{flags:02x}"


def _fail_span(span: Span, exc: Exception) -> None:
    """Mark ``span`` failed: ``error.type`` and a short status (no input values)."""
    span.set_attribute("error.type", type(exc).__qualname__)
    text = error_message(exc)[:_SPAN_ERROR_CHARS]
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {text}"))


def _exit(span: Span, token: Token[otel_context.Context], exc: BaseException | None) -> None:
    """End the ``process`` span: its outcome, then no longer current."""
    if isinstance(exc, Skip):
        span.set_attribute("streamkit.outcome", "skipped")
    elif isinstance(exc, Exception):
        _fail_span(span, exc)
    otel_context.detach(token)
    span.end()


def _exemplar(span: Span) -> None:
    """Let this call's duration carry the trace id as an exemplar (sampled traces only).

    Not reset when the scope ends: the duration is recorded just after it, in the same
    contextvars context (each handler call under middleware has one of its own).
    """
    span_context = span.get_span_context()
    if span_context.trace_flags.sampled:
        EXEMPLAR_TRACE_ID.set(f"{span_context.trace_id:032x}")
    elif EXEMPLAR_TRACE_ID.get() is not None:
        EXEMPLAR_TRACE_ID.set(None)


class Tracing(Middleware):
    """Trace every handler call and every record sent (see the module docstring).

    ``tracer_provider``: where spans go (default: the global provider). ``link_mode``:
    ``"parent"`` (default) or ``"link"`` for the producer's context. ``propagator``:
    default W3C trace context and baggage.
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        *,
        link_mode: LinkMode = "parent",
        propagator: TextMapPropagator | None = None,
    ) -> None:
        if link_mode not in ("parent", "link"):
            raise ConfigError(f"link_mode must be 'parent' or 'link', not {link_mode!r}")
        self.link_mode = link_mode
        self._propagator = propagator or _W3C
        self._fields = frozenset(self._propagator.fields)
        self._traced = self._fields | {H_FAILED_TRACEPARENT}  # a header worth a closer look
        self._tracer: Tracer = trace.get_tracer("streamkit", tracer_provider=tracer_provider)
        self._names: dict[str, str] = {}  # topic -> span name, built once per topic

    def _name(self, topic: str) -> str:
        name = self._names[topic] = f"process {topic}"
        return name

    async def handle(self, ctx: Context, call_next: CallNext) -> None:
        """A CONSUMER ``process`` span around the handler, current while it runs."""
        span, token = self._enter(ctx)
        try:
            await call_next()
        except BaseException as exc:
            _exit(span, token, exc)
            raise
        _exit(span, token, None)

    def handle_sync(self, ctx: Context, call_next: CallNextSync) -> None:
        """:meth:`handle` for a plain sync handler, run on the spot (no task)."""
        span, token = self._enter(ctx)
        try:
            call_next()
        except BaseException as exc:
            _exit(span, token, exc)
            raise
        _exit(span, token, None)

    def _enter(self, ctx: Context) -> tuple[Span, Token[otel_context.Context]]:
        """Start the ``process`` span and make it current; (span, token to detach)."""
        extracted, failed = _EMPTY, None
        traced = self._traced
        for name, _ in ctx.headers:  # most records of a busy topic carry no trace context
            if name in traced:
                extracted = self._extract(ctx.headers)
                failed = _failed_span_context(ctx.headers)
                break
        # A retry or a replay is the same piece of work: it always continues its trace.
        parent = extracted if failed is not None or self.link_mode == "parent" else None
        span = self._tracer.start_span(
            self._names.get(ctx.topic) or self._name(ctx.topic),
            context=parent if parent is not None else _EMPTY,
            kind=SpanKind.CONSUMER,
            attributes=_sampling_attributes(ctx),
            links=self._links(extracted, parent, failed),
        )
        if span.is_recording():
            span.set_attributes(_recorded_attributes(ctx))
        current = trace.set_span_in_context(span, extracted)  # keeps the baggage
        _exemplar(span)
        ctx.state[_STATE_CONTEXT] = current
        return span, otel_context.attach(current)

    @staticmethod
    def _links(
        extracted: otel_context.Context,
        parent: otel_context.Context | None,
        failed: trace.SpanContext | None,
    ) -> list[Link] | None:
        # The producer's span is the parent or a link, not both: a link to one's own parent
        # says nothing more, and Jaeger then shows the parent edge as a mere FOLLOWS_FROM.
        if failed is None and (parent is not None or extracted is _EMPTY):
            return None  # the common case: no link to build
        links: list[Link] = []
        if parent is None and extracted is not _EMPTY:
            producer = trace.get_current_span(extracted).get_span_context()
            if producer.is_valid:
                links.append(Link(producer))
        if failed is not None:
            links.append(Link(failed, {"streamkit.link": "failed_attempt"}))
        return links

    def _extract(self, headers: Headers) -> otel_context.Context:
        """The producer's context from ``headers``: the propagator runs only if one of its
        fields is there."""
        fields = self._fields
        for name, _ in headers:
            if name in fields:
                return self._propagator.extract(headers, getter=_GET)
        return _EMPTY

    def before_publish(self, record: OutgoingRecord, ctx: Context | None) -> None:
        """A PRODUCER ``send`` span for ``record``; its context goes into the headers."""
        parent = self._send_parent(record, ctx)
        span = self._tracer.start_span(
            f"send {record.topic}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=_send_attributes(record),
        )
        # The span ends now, not on the broker's ack: the hook runs before the send, and the
        # ack's outcome is counted in metrics and logged by the runtime.
        span.end()
        self._propagator.inject(record.headers, trace.set_span_in_context(span, parent), _SET)
        failed = self._failed_attempt(record, ctx)
        if failed is None:
            _drop(record.headers, H_FAILED_TRACEPARENT)
        else:
            _SET.set(record.headers, H_FAILED_TRACEPARENT, _traceparent(failed))

    def _send_parent(self, record: OutgoingRecord, ctx: Context | None) -> otel_context.Context:
        """Inside a handler: its current span. A failure record: the failed attempt's span.

        Without a handler call (bad input, keep-key-order parking) the record's own
        headers, so the failure still lands in the producer's trace.
        """
        if record.kind == "event":
            current = otel_context.get_current()
            if trace.get_current_span(current).get_span_context().is_valid:
                return current
        if ctx is not None and _STATE_CONTEXT in ctx.state:
            stored: otel_context.Context = ctx.state[_STATE_CONTEXT]
            return stored
        if record.kind == "event":
            return otel_context.get_current()
        return self._propagator.extract(record.headers, getter=_GET)

    @staticmethod
    def _failed_attempt(record: OutgoingRecord, ctx: Context | None) -> trace.SpanContext | None:
        if record.kind == "event" or ctx is None or _STATE_CONTEXT not in ctx.state:
            return None
        span_context = trace.get_current_span(ctx.state[_STATE_CONTEXT]).get_span_context()
        return span_context if span_context.is_valid else None


def traced_headers(
    topic: str,
    headers: Iterable[tuple[str, bytes]] = (),
    *,
    tracing: Tracing | None = None,
) -> Headers:
    """Headers for a record sent outside a handler (``Producer.publish``), with a ``send``
    span under the current span: ``producer.publish(..., headers=traced_headers(topic))``.
    """
    record = OutgoingRecord(topic, None, key=None, headers=list(headers), kind="event")
    (tracing or Tracing()).before_publish(record, None)
    return record.headers


def add_trace_ids(
    logger: object, name: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """structlog processor: ``trace_id``/``span_id`` of the current span, if there is one."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event_dict.setdefault("trace_id", f"{span_context.trace_id:032x}")
        event_dict.setdefault("span_id", f"{span_context.span_id:016x}")
    return event_dict


def middleware_from_env(environ: Mapping[str, str] | None = None) -> list[Middleware]:
    """``STREAMKIT_TRACING=otlp``: an SDK provider exporting OTLP/HTTP, and its middleware.

    The exporter and resource read the standard variables (``OTEL_EXPORTER_OTLP_ENDPOINT``,
    ``OTEL_SERVICE_NAME``...). Sampling: ``OTEL_TRACES_SAMPLER`` (and ``_ARG``) when set;
    otherwise parent-based with 1 % of new traces (:data:`DEFAULT_ROOT_RATIO`): every event
    whose producer sampled its trace is traced, and 1 % of those that arrive without one
    start a trace. A recorded and exported span costs the Python SDK about 80 us of CPU,
    ten times a trivial handler; tracing every event of a busy topic would make tracing
    the service's main work. ``STREAMKIT_TRACING_LINK_MODE``: ``parent`` (default) or
    ``link``. Unset or ``off``: no middleware, nothing set up.
    """
    environ = os.environ if environ is None else environ
    mode = environ.get("STREAMKIT_TRACING", "off").strip().lower()
    if mode in ("", "off", "none"):
        return []
    if mode != "otlp":
        raise ConfigError(f"STREAMKIT_TRACING={mode!r}: expected 'otlp' or 'off'")
    link_mode = environ.get("STREAMKIT_TRACING_LINK_MODE", "parent").strip().lower()
    if link_mode not in ("parent", "link"):
        raise ConfigError(f"STREAMKIT_TRACING_LINK_MODE={link_mode!r}: expected 'parent' or 'link'")
    provider = _otlp_provider(environ)
    trace.set_tracer_provider(provider)
    log.info("tracing on", exporter="otlp", sampler=provider.sampler.get_description())
    return [Tracing(provider, link_mode=link_mode)]  # type: ignore[arg-type]


def default_sampler(environ: Mapping[str, str]) -> Sampler | None:
    """Parent-based, :data:`DEFAULT_ROOT_RATIO` of new traces; None when
    ``OTEL_TRACES_SAMPLER`` is set (the SDK then builds that one from the environment)."""
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if environ.get("OTEL_TRACES_SAMPLER", "").strip():
        return None
    return ParentBased(TraceIdRatioBased(DEFAULT_ROOT_RATIO))


def _otlp_provider(environ: Mapping[str, str]) -> SdkTracerProvider:
    """A batching SDK provider; it flushes on interpreter exit (the SDK's atexit hook)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "streamkit"}))
    provider = SdkProvider(resource=resource, sampler=default_sampler(environ))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider
