"""The relayed envelope the peers publish in scenario 8 (no streamkit: ``.venv-bench`` has none).

Byte for byte the shape ``streamkit.envelope.encode_envelope`` writes (orjson, an aware UTC
``occurred_at``), with the event id made the way ``streamkit.envelope.new_event_id`` makes
it (122 bits from :mod:`random`, not ``uuid4``'s ``os.urandom`` system call per event), so
every contender pays the same for its output.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson

RELAYED = "order.relayed"
HEADER_EVENT_TYPE = "event_type"

_getrandbits = random.getrandbits
_V4_BITS = (4 << 76) | (2 << 62)  # version 4, RFC 4122 variant
_V4_MASK = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)


def new_event_id() -> str:
    """A random (version 4) UUID in its usual text form."""
    h = f"{_getrandbits(128) & _V4_MASK | _V4_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def relayed(seq: int, ts: float) -> bytes:
    """The output envelope for the input event ``seq`` produced at ``ts``."""
    return orjson.dumps(
        {
            "event_id": new_event_id(),
            "event_type": RELAYED,
            "occurred_at": datetime.now(UTC),
            "data": {"seq": seq, "ts": ts},
        }
    )
