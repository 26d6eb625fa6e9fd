"""ctx.emit's producer without a broker: a full local queue is backpressure, then a typed error."""

from __future__ import annotations

import time

import pytest

from streamkit.errors import DeliveryTimeoutError
from streamkit.producer import emitter as emitter_module
from streamkit.producer.emitter import Emitter
from streamkit.record import OutgoingRecord


def _record() -> OutgoingRecord:
    return OutgoingRecord("t", b"v", key=b"k", headers=[], kind="event")


def test_a_full_local_queue_makes_the_emit_wait_then_fail_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(emitter_module, "ROOM_WAIT", 0.3)
    # Nothing listens there: records stay queued, and the queue holds two.
    emitter = Emitter({"bootstrap.servers": "127.0.0.1:1", "queue.buffering.max.messages": 2})
    emitter.emit(_record(), "src", 0, 0)
    emitter.emit(_record(), "src", 0, 1)
    started = time.monotonic()
    with pytest.raises(DeliveryTimeoutError, match="queue still full"):
        emitter.emit(_record(), "src", 0, 2)
    assert time.monotonic() - started >= 0.3  # it waited for room first
    assert emitter.active and emitter.take_counts() == (2, 0)  # the refused one not sent
    assert emitter.close(timeout=0.1) == 2  # unsent, purged: their inputs not committed
