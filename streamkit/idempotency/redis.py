"""The Redis dedupe store: one key per handled event, ``SET NX`` with a TTL.

Needs the ``streamkit[redis]`` extra (redis-py's asyncio client). Before the handler runs,
``EXISTS`` tells whether the key was handled; after it succeeded, ``SET key NX EX ttl``
marks it. Guarantee: a duplicate arriving within ``ttl`` seconds of the first success is
skipped, across restarts and workers. Not exactly-once: a crash *between* the handler's
effect and the mark repeats the effect when the event is delivered again; use the
PostgreSQL inbox when the effect is a database write. Cost: two round trips per event.

Redis down (connection refused, timeout) raises
:class:`~streamkit.idempotency.base.StoreUnavailableError`: the event is held and retried,
never dead-lettered. A failed mark is retried alone, without running the handler again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streamkit.errors import ConfigError
from streamkit.idempotency.base import StoreUnavailableError

try:
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - the extra is in [dev]
    raise ConfigError("the Redis store needs redis-py: pip install 'streamkit[redis]'") from exc

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from streamkit.handlers.context import Context
    from streamkit.handlers.middleware import CallNext
    from streamkit.idempotency.base import Hold

__all__ = ["DEFAULT_TTL", "RedisStore"]

#: How long a handled key is remembered, in seconds (a day): longer than a restart and
#: a rebalance take, shorter than the topic's retention usually is.
DEFAULT_TTL = 86_400
_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisStore:
    """Handled keys in Redis as ``{prefix}:{group}:{key}``, each for ``ttl`` seconds.

    ``client`` is a ``redis.asyncio.Redis`` (or give ``url``); operations time out after
    ``timeout`` seconds, which counts as the store being down.
    """

    name = "redis"

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        ttl: int = DEFAULT_TTL,
        prefix: str = "streamkit:dedupe",
        timeout: float = 2.0,
    ) -> None:
        if (url is None) == (client is None):
            raise ConfigError("RedisStore: give url= or client=, not both")
        if ttl < 1:
            raise ConfigError(f"RedisStore: ttl must be at least 1 second, got {ttl}")
        self.client = client or aioredis.Redis.from_url(
            str(url), socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self.ttl = ttl
        self.prefix = prefix

    def _name(self, ctx: Context, key: str) -> str:
        # Per consumer group: two services reading one topic each handle every event.
        return f"{self.prefix}:{ctx.group}:{key}"

    async def run_once(self, ctx: Context, key: str, call: CallNext, hold: Hold) -> bool:
        """``EXISTS`` -> skip, else the handler, then ``SET NX EX`` (each op held)."""
        name = self._name(ctx, key)
        if await hold(lambda: _answer(self.client.exists(name))):
            return False
        await call()
        # If we crash here, the effect happened and the mark did not: the redelivered
        # event runs the handler again (at-least-once, stated in the module docstring).
        await hold(lambda: _answer(self.client.set(name, b"1", nx=True, ex=self.ttl)))
        return True

    async def close(self) -> None:
        """Close the client's connections (called when the worker stops; reusable after)."""
        await self.client.aclose()


async def _answer(op: Awaitable[Any]) -> Any:
    try:
        return await op
    except _DOWN as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
