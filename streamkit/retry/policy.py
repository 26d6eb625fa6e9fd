"""Retry policies and backoff math (pure functions; unit-tested without a broker)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Protocol

from streamkit.errors import ConfigError, PermanentError


class Backoff(Protocol):
    """Computes the delay before attempt ``failed_attempts + 1``."""

    def delay(self, failed_attempts: int) -> float:
        """Seconds to wait after the ``failed_attempts``-th failure (1-based)."""
        ...


@dataclass(frozen=True, slots=True)
class FixedBackoff:
    """The same delay after every failure."""

    seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("FixedBackoff.seconds must be >= 0")

    def delay(self, failed_attempts: int) -> float:
        """Always ``seconds``."""
        return self.seconds


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """``base * factor ** (n - 1)`` capped at ``max_delay``, with optional jitter.

    ``jitter`` is a fraction in [0, 1]: the delay is drawn uniformly from
    ``[d * (1 - jitter), d]``, so it never exceeds the cap and spreads a burst of failures
    (a downstream outage) instead of retrying them all in the same millisecond.
    """

    base: float = 1.0
    factor: float = 2.0
    max_delay: float = 300.0
    jitter: float = 0.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.base < 0 or self.max_delay < 0:
            raise ValueError("ExponentialBackoff delays must be >= 0")
        if self.factor < 1:
            raise ValueError("ExponentialBackoff.factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("ExponentialBackoff.jitter must be within [0, 1]")

    def delay(self, failed_attempts: int) -> float:
        """The capped, jittered delay after the ``failed_attempts``-th failure."""
        exponent = max(failed_attempts - 1, 0)
        # Cap the exponent so a large attempt count cannot overflow a float.
        raw = self.base * self.factor ** min(exponent, 64)
        capped = min(raw, self.max_delay)
        if self.jitter:
            return capped * (1 - self.jitter * self.rng.random())
        return capped


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a handler's failures are retried.

    ``max_attempts`` counts the first try: 3 means one try and two retries, then the DLQ.
    Exceptions in ``non_retryable`` (and every :class:`~streamkit.errors.PermanentError`)
    go to the dead-letter topic on their first occurrence.
    """

    max_attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: ExponentialBackoff(base=1.0, jitter=0.2))
    non_retryable: tuple[type[BaseException], ...] = ()

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts must be >= 1")

    def is_retryable(self, exc: BaseException) -> bool:
        """False for bad input, configuration errors and types declared non-retryable.

        A ConfigError (``ctx.publish`` of a type with no topic, say) can never succeed on
        a later attempt: it goes to the DLQ at once, with the reason.
        """
        return not isinstance(exc, (PermanentError, ConfigError, *self.non_retryable))

    def next_delay(self, failed_attempts: int, requested: float | None = None) -> float:
        """The delay before the next attempt; a handler's ``Retry(delay=...)`` wins."""
        if requested is not None:
            return max(requested, 0.0)
        return self.backoff.delay(failed_attempts)


NO_RETRY = RetryPolicy(max_attempts=1)
