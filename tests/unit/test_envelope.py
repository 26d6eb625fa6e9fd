import os
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import BaseModel

from streamkit import envelope as env
from streamkit.envelope import encode_envelope, header_int, header_str, header_value, loads
from streamkit.errors import DecodeError


class Order(BaseModel):
    order_id: str
    amount_cents: int


def test_envelope_round_trip_with_model() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    raw = encode_envelope("order.created", Order(order_id="o1", amount_cents=5), occurred_at=at)
    obj = orjson.loads(raw)
    assert obj["event_type"] == "order.created"
    assert obj["data"] == {"order_id": "o1", "amount_cents": 5}
    assert obj["occurred_at"] == "2026-01-02T03:04:05+00:00"
    assert len(obj["event_id"]) == 36


def test_event_ids_are_unique() -> None:
    ids = {orjson.loads(encode_envelope("x", {}))["event_id"] for _ in range(100)}
    assert len(ids) == 100


def test_unencodable_data_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode_envelope("x", {"o": object()})


@pytest.mark.parametrize("raw", [b"{nope", b"\xff\xfe", b'{"a": "\xff"}'])
def test_loads_keeps_raw_bytes(raw: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        loads(raw)
    assert info.value.raw == raw


def test_headers_last_wins_and_typed_reads() -> None:
    headers = [("a", b"1"), ("a", b"2"), ("bin", b"\xff"), ("n", b"x")]
    assert header_value(headers, "a") == b"2"
    assert header_int(headers, "a") == 2
    assert header_str(headers, "bin") is None
    assert header_int(headers, "n") is None
    assert header_value(None, "a") is None


def test_event_ids_are_version_4_uuids_unique_also_across_a_fork() -> None:
    ids = [env.new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert {uuid.UUID(i).version for i in ids[:100]} == {4}
    assert all(str(uuid.UUID(i)) == i for i in ids[:100])  # the usual text form
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: what it makes next must differ from what the parent makes
        os.write(write, env.new_event_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 100).decode()
    os.close(read)
    assert child and child != env.new_event_id()
