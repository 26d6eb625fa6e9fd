"""The benchmark workload: the event model and its typed envelope (pydantic only).

Imported by every contender, including the peers in ``.venv-bench`` which have no
streamkit: keep it free of streamkit imports.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

EVENT_TYPE = "order.created"


class Order(BaseModel):
    """The ``data`` of one event; ``order_id`` is also the record key."""

    order_id: str
    seq: int
    amount_cents: int
    ts: float  # time.time() when the event was produced


class OrderEnvelope(BaseModel):
    """The wire envelope with typed data: validated in one pass, as streamkit does."""

    event_id: str
    event_type: str
    occurred_at: datetime
    data: Order


def key_of(seq: int, keys: int) -> str:
    """The key (and order id) of event ``seq`` when spread over ``keys`` keys."""
    return f"k{seq % keys:05d}"
