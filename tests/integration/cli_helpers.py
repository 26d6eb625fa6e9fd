"""Helpers for the operator CLI tests: run commands in-process, build dead letters."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from click.testing import CliRunner, Result
from confluent_kafka import Producer as RawProducer

from streamkit import envelope as env
from streamkit.cli.main import cli
from streamkit.envelope import encode_envelope


def run_cli(*args: str, input: str | None = None, env_vars: dict[str, str] | None = None) -> Result:
    """``streamkit ARGS`` in this process (stdin is not a terminal: no progress bars)."""
    return CliRunner().invoke(cli, list(args), input=input, env=env_vars, catch_exceptions=False)


def json_of(result: Result) -> Any:
    """The command's JSON output, failing with its stderr when it did not succeed."""
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}{result.stdout}"
    return orjson.loads(result.stdout)


def one_error_line(result: Result) -> str:
    """The single ``streamkit: error: ...`` line a failing command prints on stderr."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
    assert lines[0].startswith("streamkit: error: "), lines[0]
    return lines[0]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class DeadLetterSpec:
    """One synthetic dead letter, as the runtime would have written it."""

    i: int
    source: str
    group: str
    event_type: str = "order.created"
    error_type: str = "TimeoutError"
    key: bytes | None = None
    timestamp_ms: int | None = None
    partition: int | None = None  # in the DLQ (None: the key decides)
    original_partition: int = 0
    streamkit_headers: bool = True
    user_headers: list[tuple[str, bytes]] = field(default_factory=list)

    def value(self) -> bytes:
        return encode_envelope(self.event_type, {"i": self.i}, event_id=f"event-{self.i}")

    def headers(self) -> list[tuple[str, bytes]]:
        headers = [(env.HEADER_EVENT_TYPE, self.event_type.encode()), ("trace-id", b"t%d" % self.i)]
        headers += self.user_headers
        if self.streamkit_headers:
            headers += [
                (env.H_ORIGINAL_TOPIC, self.source.encode()),
                (env.H_ORIGINAL_PARTITION, str(self.original_partition).encode()),
                (env.H_ORIGINAL_OFFSET, str(self.i).encode()),
                (env.H_ORIGINAL_TIMESTAMP, b"1700000000000"),
                (env.H_ATTEMPT, b"3"),
                (env.H_GROUP, self.group.encode()),
                (env.H_ERROR_TYPE, self.error_type.encode()),
                (env.H_ERROR_MESSAGE, f"failure number {self.i}".encode()),
                (env.H_ERROR_TRACEBACK, b'Traceback (most recent call last):\n  File "h.py"\nboom'),
                (env.H_FAILED_AT, b"1700000000000"),
            ]
        return headers


def produce_dead_letters(bootstrap: str, topic: str, specs: Iterable[DeadLetterSpec]) -> None:
    """Write ``specs`` to ``topic`` with their timestamps and partitions, all acknowledged."""
    producer = RawProducer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    errors: list[Any] = []

    def report(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for spec in specs:
        kwargs: dict[str, Any] = {"key": spec.key, "headers": spec.headers(), "on_delivery": report}
        if spec.timestamp_ms is not None:
            kwargs["timestamp"] = spec.timestamp_ms
        if spec.partition is not None:
            kwargs["partition"] = spec.partition
        producer.produce(topic, spec.value(), **kwargs)
    assert producer.flush(30) == 0, "dead letters not acknowledged in 30 s"
    assert not errors, errors


def replayed_from(msgs: Sequence[Any]) -> list[str]:
    """The ``streamkit-replayed-from`` header of each replayed record."""
    return [env.header_str(m.headers(), env.H_REPLAYED_FROM) or "" for m in msgs]


def positions(records: Iterable[dict[str, Any]]) -> set[tuple[int, int]]:
    """``{(partition, offset)}`` of ``dlq list --json`` records."""
    return {(r["partition"], r["offset"]) for r in records}


def create_topic(admin: Any, name: str, partitions: int) -> str:
    """Create ``name`` as it is (the test's ``make_topic`` cleanup removes it if it
    contains the test's unique suffix)."""
    from confluent_kafka.admin import NewTopic

    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name
