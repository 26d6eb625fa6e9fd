"""Where a failed record goes next (retry tier or DLQ) and the headers it carries there."""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from streamkit import envelope as env
from streamkit.codecs.json import summarise
from streamkit.errors import Retry
from streamkit.retry.policy import RetryPolicy
from streamkit.retry.topics import Tier, TopicNames

MAX_MESSAGE = 1_000  # characters of the error message kept in a header
MAX_TRACEBACK = 4_000  # characters of the traceback kept (its end: the raising frames)
TRACEBACK_FRAMES = 8  # innermost frames formatted


@dataclass(frozen=True, slots=True)
class FailurePlan:
    """The decision for one failure."""

    kind: str  # "retry" or "dlq"
    topic: str
    headers: env.Headers
    delay: float  # seconds until the retry is due (0 for the DLQ)
    attempt: int  # the attempt that failed
    partition: int | None = None  # the source partition: a key stays on one partition number


def error_type(exc: BaseException) -> str:
    """The exception's class name, as used in headers and metric labels."""
    return type(exc).__name__


def error_message(exc: BaseException, *, full: bool = False) -> str:
    """The text of ``exc`` for logs and headers, without input values unless ``full``.

    A pydantic ``ValidationError`` (a handler validating something itself) repeats the
    offending input (``input_value='4111-1111-1111-1111'``): by default only the error
    locations and messages are kept, as streamkit's own SchemaError does.
    """
    if not full and isinstance(exc, ValidationError):
        return summarise(exc)
    return str(exc)


def _format_tb(exc: BaseException, full: bool) -> str:
    """The innermost frames (file, line, function) and the exception.

    Without source lines: ``traceback.format_exception`` stats every source file (linecache
    checks) and re-parses lines for carets, over 100 us per failure under load, more than
    the failure's publish. File and line point at the code just as well.
    """
    tbs = []
    tb = exc.__traceback__
    while tb is not None:  # what traceback.walk_tb yields, without a generator per frame
        tbs.append(tb)
        tb = tb.tb_next
    lines = ["Traceback (most recent call last):\n"]
    for tb in tbs[-TRACEBACK_FRAMES:]:
        code = tb.tb_frame.f_code
        lines.append(f'  File "{code.co_filename}", line {tb.tb_lineno}, in {code.co_name}\n')
    if full or not isinstance(exc, ValidationError):
        lines.append(exception_line(exc))
    else:
        lines.append(f"{error_type(exc)}: {error_message(exc)}\n")
    return "".join(lines)[-MAX_TRACEBACK:]


# Formatted by the traceback module itself: several lines (SyntaxError), or, from Python
# 3.12, a "Did you mean" hint worked out from the exception's attributes.
_SLOW_PATH = (SyntaxError, AttributeError, NameError, ImportError)


def exception_line(exc: BaseException) -> str:
    """What ``traceback.format_exception_only`` gives for ``exc``, without its cost.

    It builds a ``TracebackException`` (a third of a failure's cost on the dispatcher
    side); for the usual exception, one line of type and message says the same. The
    kinds it formats otherwise (``_SLOW_PATH``), and an exception with notes, still go
    through it.
    """
    cls = type(exc)
    if isinstance(exc, _SLOW_PATH) or _has_notes(exc):
        return "".join(traceback.format_exception_only(cls, exc))
    name, module = cls.__qualname__, cls.__module__
    if module not in ("__main__", "builtins"):
        name = f"{module if isinstance(module, str) else '<unknown>'}.{name}"
    try:
        text = str(exc)
    except BaseException:  # as the traceback module does, whatever str() raised
        text = "<exception str() failed>"
    return f"{name}: {text}\n" if text else f"{name}\n"


def _has_notes(exc: BaseException) -> bool:
    try:
        return getattr(exc, "__notes__", None) is not None
    except BaseException:  # a broken __notes__: the traceback module copes with it
        return True


_FAILURE_HEADERS = frozenset(env.FAILURE_HEADERS)


def failure_headers(
    msg: Any,
    headers: env.Headers | None,
    *,
    group: str,
    exc: BaseException,
    attempt: int,
    not_before_ms: int | None,
    now_ms: int,
    full: bool = False,
) -> env.Headers:
    """Original headers minus old failure headers, plus this failure's.

    ``original-*`` headers are written only by the first failure: a record that went
    through three tiers still points at the source record, once.
    """
    kept = []
    first = True  # no original-* headers yet: this is the record's first failure
    for item in headers or ():  # one pass: a retry record carries a dozen headers
        name = item[0]
        if name in _FAILURE_HEADERS:
            continue
        if name == env.H_ORIGINAL_TOPIC:
            first = False
        kept.append(item)
    if first:
        _, ts = msg.timestamp()
        kept += [
            (env.H_ORIGINAL_TOPIC, msg.topic().encode()),
            (env.H_ORIGINAL_PARTITION, str(msg.partition()).encode()),
            (env.H_ORIGINAL_OFFSET, str(msg.offset()).encode()),
            (env.H_ORIGINAL_TIMESTAMP, str(ts).encode()),
        ]
    kept += [
        (env.H_ATTEMPT, str(attempt).encode()),
        (env.H_GROUP, group.encode()),
        (env.H_ERROR_TYPE, error_type(exc).encode()),
        (
            env.H_ERROR_MESSAGE,
            error_message(exc, full=full)[:MAX_MESSAGE].encode("utf-8", "replace"),
        ),
        (env.H_ERROR_TRACEBACK, _text(_format_tb(exc, full))),
        (env.H_FAILED_AT, str(now_ms).encode()),
    ]
    if not_before_ms is not None:
        kept.append((env.H_NOT_BEFORE, str(not_before_ms).encode()))
    return kept


@dataclass(frozen=True, slots=True)
class FailurePlanner:
    """Decides retry tier vs DLQ for the failures of one consumer group."""

    group: str
    names: TopicNames
    tiers: int  # retry tiers available per source topic
    full_errors: bool = False  # input values in error headers (STREAMKIT_ERROR_DETAILS=full)
    # Retry tier names by (source topic, tier): formatted once, not once per failure.
    _retry_topics: dict[tuple[str, int], str] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def plan(
        self,
        msg: Any,
        headers: env.Headers | None,
        exc: BaseException,
        policy: RetryPolicy | None,
        attempt: int,
        tier: Tier,
    ) -> FailurePlan:
        """The next stop for ``msg`` whose ``attempt``-th handling raised ``exc``.

        ``headers`` are the record's, read once. ``policy`` None means bad input (or no
        handler): straight to the DLQ.
        """
        now_ms = int(time.time() * 1000)
        if policy is None or not self._retryable(exc, policy, attempt):
            out = failure_headers(
                msg,
                headers,
                group=self.group,
                exc=exc,
                attempt=attempt,
                not_before_ms=None,
                now_ms=now_ms,
            )
            dlq = self.names.dlq(tier.source, self.group)
            return FailurePlan("dlq", dlq, out, 0.0, attempt, _source_partition(out))
        requested = exc.delay if isinstance(exc, Retry) else None
        delay = policy.next_delay(attempt, requested)
        out = failure_headers(
            msg,
            headers,
            group=self.group,
            exc=exc,
            attempt=attempt + 1,
            not_before_ms=now_ms + int(delay * 1000),
            now_ms=now_ms,
            full=self.full_errors,
        )
        # Attempt n failed -> tier n; a policy longer than the tiers keeps using the last one.
        topic = self._retry_topic(tier.source, min(attempt, self.tiers))
        return FailurePlan("retry", topic, out, delay, attempt, _source_partition(out))

    def _retry_topic(self, source: str, n: int) -> str:
        topic = self._retry_topics.get((source, n))
        if topic is None:
            topic = self._retry_topics[(source, n)] = self.names.retry(source, self.group, n)
        return topic

    def _retryable(self, exc: BaseException, policy: RetryPolicy, attempt: int) -> bool:
        return self.tiers > 0 and attempt < policy.max_attempts and policy.is_retryable(exc)


def _text(value: str) -> bytes:
    return value.encode("utf-8", "replace")


def _source_partition(headers: env.Headers) -> int | None:
    return env.header_int(headers, env.H_ORIGINAL_PARTITION)
