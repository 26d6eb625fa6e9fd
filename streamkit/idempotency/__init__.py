"""Idempotent handlers: run each event's handler at most once per dedupe key.

``Router(middleware=[Dedupe(store)])`` with one of three stores:

- :class:`MemoryStore` (here): a bounded window per partition; forgets on restart.
- :class:`~streamkit.idempotency.redis.RedisStore` (``streamkit[redis]``): ``SET NX`` with
  a TTL, across restarts; a crash between effect and mark repeats the effect.
- :class:`~streamkit.idempotency.postgres.PostgresInbox` (``streamkit[postgres]``): the
  handler's writes and the inbox row in one transaction -- exactly-once for the database.

The Redis and PostgreSQL modules are imported by name, so their drivers stay optional.
"""

from streamkit.idempotency.base import (
    Backoff,
    Dedupe,
    DedupeStore,
    DuplicateEvent,
    StoreUnavailableError,
)
from streamkit.idempotency.memory import DEFAULT_WINDOW, MemoryStore

__all__ = [
    "Backoff",
    "DEFAULT_WINDOW",
    "Dedupe",
    "DedupeStore",
    "DuplicateEvent",
    "MemoryStore",
    "StoreUnavailableError",
]
