"""Poison records: whatever one record contains, it ends in the DLQ and the worker goes on.

Each scenario writes 50 healthy records, the poison, 50 healthy records to one partition;
the contract is the same unless a test says more: the service stays up, the partition's
commit passes the poison within a bound, the poison is in the DLQ, and the verifier finds
every healthy record handled once, in key order.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streamkit import Producer
from streamkit.envelope import encode_envelope
from tests.faults.harness import dead_ids, journal_service, produce_seq
from tests.faults.rawproduce import produce as raw_produce
from tests.faults.services.journal import router
from tests.faults.verifier import read_journal, verify
from tests.integration.helpers import (
    STREAMKIT,
    Service,
    committed,
    end_offsets,
    ensure_failure_topics,
    read_all,
    wait_until,
)

pytestmark = pytest.mark.kafka
SETTLE = 6  # seconds for the commit to pass the poison: a healthy worker needs about one


def _alive(service: Service) -> None:
    code = service.proc.poll()
    if code is not None:
        tail = service.log.read_text(errors="replace")[-1500:]
        raise AssertionError(f"the service died (exit {code}) on a poison record:\n{tail}")


def scenario(
    name: str,
    env: tuple[str, str, Path],
    poison: Callable[[str], Any],
    *,
    dead: int = 1,
    extra: list[str] | None = None,
) -> tuple[Service, list[Any]]:
    """Run the shared poison scenario; return the (still running) service and the DLQ."""
    bootstrap, unique, tmp = env
    topic, group, out = f"poison-{unique}", f"g-{unique}", tmp / "j.txt"
    ensure_failure_topics(bootstrap, router, topic, group)
    before = produce_seq(bootstrap, topic, keys=5, per_key=10, key_prefix="a")
    poison(topic)
    after = produce_seq(bootstrap, topic, keys=5, per_key=10, key_prefix="b")
    service = journal_service(bootstrap, group, topic, out, extra=extra)
    service.wait_ready(30)
    ends = end_offsets(bootstrap, topic, 1)

    def passed() -> bool:
        _alive(service)
        return committed(bootstrap, group, topic, 1) == ends

    wait_until(passed, SETTLE, f"the commit to pass the poison ({name})", every=0.2)
    dlq = read_all(bootstrap, f"{topic}.{group}.dlq", dead, timeout=10)
    _alive(service)
    assert len(dlq) == dead, f"{len(dlq)} records in the DLQ, expected {dead}"
    verify(name, before + after, read_journal(out), dead=dead_ids(dlq)).check()
    return service, dlq


@pytest.fixture
def env(kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path) -> tuple[str, str, Path]:
    """(bootstrap, unique suffix, tmp dir); the source topic has one partition."""
    make_topic("poison", partitions=1)
    return kafka_bootstrap, unique, tmp_path


def _one(bootstrap: str, topic: str, event_type: str, **extra: Any) -> None:
    produce_seq(bootstrap, topic, keys=1, per_key=1, event_type=event_type, extra=extra,
                key_prefix="x")  # fmt: skip


def _failing(bootstrap: str, key: bytes) -> Callable[[str], None]:
    value = encode_envelope("j.fail", {"seq": 0})
    return lambda topic: _send(bootstrap, topic, value, key, [("event_type", b"j.fail")])


def _send(bootstrap: str, topic: str, value: bytes, key: bytes, headers: Any = None) -> None:
    with Producer({"bootstrap.servers": bootstrap}) as producer:
        producer.send(topic, value, key=key, headers=headers).result(30)


@pytest.mark.timeout(60)
def test_failing_record_just_under_the_max_message_size_is_dead_lettered(env) -> None:
    # Contract: a record just under the producer's 1,000,000-byte limit that fails in its
    # handler still reaches the DLQ (its failure headers shrink, or a stated fallback record
    # is written) and the partition moves on.
    value = encode_envelope("j.fail", {"seq": 0, "pad": ""})
    value = encode_envelope("j.fail", {"seq": 0, "pad": "x" * (999_700 - len(value))})

    def poison(topic: str) -> None:
        _send(env[0], topic, value, b"big", [("event_type", b"j.fail")])

    _, dlq = scenario("record near max size", env, poison)
    assert dlq[0].key() == b"big"


@pytest.mark.timeout(60)
def test_header_name_that_is_not_utf8_goes_to_the_dlq_byte_for_byte(env) -> None:
    # Contract: a record whose header name is not valid UTF-8 (written with a raw Produce
    # request: confluent-kafka cannot) goes to the DLQ with key and value byte for byte;
    # the process never crashes on it.
    value = encode_envelope("j.sync", {"seq": 0})

    def poison(topic: str) -> None:
        raw_produce(env[0], topic, 0, [(b"bad-header", value, [(b"\xff\xfe", b"v")])])

    _, dlq = scenario("non-UTF-8 header name", env, poison)
    # Never call headers() on the copy: it may carry the same header name.
    assert (dlq[0].key(), dlq[0].value()) == (b"bad-header", value)


@pytest.mark.timeout(60)
def test_two_header_names_that_are_not_utf8_in_one_batch_both_go_to_the_dlq(env) -> None:
    # Contract: a batch's headers are checked in one look; with two broken records in
    # it (each leaves an error pending, the second replacing the first), each is found
    # by itself and dead-lettered, and every healthy record around them is handled.
    first, second = encode_envelope("j.sync", {"seq": 0}), encode_envelope("j.sync", {"seq": 1})

    def poison(topic: str) -> None:
        bad = [(b"\xff\xfe", b"v"), (b"ok", b"fine")]  # a whole pair after the broken one
        raw_produce(env[0], topic, 0, [(b"bad-1", first, bad), (b"bad-2", second, bad)])

    _, dlq = scenario("two non-UTF-8 header names", env, poison, dead=2)
    assert sorted((m.key(), m.value()) for m in dlq) == [(b"bad-1", first), (b"bad-2", second)]


@pytest.mark.timeout(60)
def test_retry_with_nan_delay_settles_the_record(env) -> None:
    # Contract: `raise Retry(delay=float("nan"))` is rejected where it is raised, so the
    # record still ends somewhere (retry tier, then DLQ) and the offset moves on.
    scenario("Retry(delay=nan)", env, lambda t: _one(env[0], t, "j.nan"))


@pytest.mark.timeout(60)
def test_key_with_rich_markup_is_dead_lettered_and_listed(env) -> None:
    # Contract: a key `[/]` (rich markup) is just bytes to the worker: its failure reaches
    # the DLQ like any other; `streamkit dlq list --json` shows it byte-faithfully.
    _, dlq = scenario("key [/]", env, _failing(env[0], b"[/]"))
    assert dlq[0].key() == b"[/]"
    done = subprocess.run(
        [STREAMKIT, "dlq", "list", dlq[0].topic(), "-b", env[0], "--json"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-1000:]
    assert "[/]" in done.stdout


@pytest.mark.timeout(60)
def test_key_with_rich_markup_in_dlq_list_table(env) -> None:
    # Contract (issue 17 item 13): `streamkit dlq list` prints a record whose key is `[/]`
    # instead of failing on it as rich markup.
    _, dlq = scenario("key [/] table", env, _failing(env[0], b"[/]"))
    done = subprocess.run(
        [STREAMKIT, "dlq", "list", dlq[0].topic(), "-b", env[0]],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-1000:]


@pytest.mark.timeout(60)
def test_json_nested_5000_deep_is_dead_lettered_as_bad_input(env) -> None:
    # Contract: an envelope whose data nests 5,000 arrays deep is bad input: straight to
    # the DLQ with its value byte for byte; no RecursionError reaches the worker.
    value = (b'{"event_id":"e","event_type":"j.sync","occurred_at":"2026-01-01T00:00:00Z",'
             b'"data":' + b"[" * 5000 + b"]" * 5000 + b"}")  # fmt: skip
    _, dlq = scenario(
        "JSON 5,000 deep",
        env,
        lambda t: _send(env[0], t, value, b"deep", [("event_type", b"j.sync")]),
    )
    assert dlq[0].value() == value


@pytest.mark.timeout(60)
def test_400_headers_of_1kb_are_handled_and_dead_lettered_whole(env) -> None:
    # Contract: a record with 400 headers of 1 KB is handled like any other; when it fails,
    # its DLQ copy keeps all 400 headers once, plus the failure headers.
    headers = [(f"h{i}", bytes([65 + i % 26]) * 1024) for i in range(400)]

    def poison(topic: str) -> None:
        _send(env[0], topic, encode_envelope("j.fail", {"seq": 0}), b"wide",
              [("event_type", b"j.fail"), *headers])  # fmt: skip

    _, dlq = scenario("400 headers of 1 KB", env, poison)
    names = [k for k, _ in dlq[0].headers() if k.startswith("h")]
    assert names == [k for k, _ in headers]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("base", ["KeyboardInterrupt", "SystemExit", "GeneratorExit"])
def test_base_exception_subclass_from_a_handler_is_a_failure_not_a_crash(env, base: str) -> None:
    # Contract: a handler raising a subclass of KeyboardInterrupt, SystemExit or
    # GeneratorExit fails that record (retry tier, then DLQ) and the worker keeps going;
    # it neither dies nor strands the offset.
    scenario(
        f"handler raises {base} subclass", env, lambda t: _one(env[0], t, "j.base", raise_=base)
    )


@pytest.mark.timeout(60)
def test_full_producer_queue_does_not_freeze_other_records(
    kafka_bootstrap: str, make_topic, unique: str, tmp_path: Path
) -> None:
    # Contract: a handler publishing 300 records through a 1-slot producer queue
    # (-X queue.buffering.max.messages=1) never blocks the event loop: its publish calls
    # return at once (the records wait, in order, for room), records of another partition
    # are handled meanwhile, and all 300 records arrive.
    topic, sink = make_topic("qfull", partitions=2), make_topic("sink", partitions=1)
    group, out = f"g-{unique}", tmp_path / "j.txt"
    with Producer({"bootstrap.servers": kafka_bootstrap}) as producer:
        producer.publish("j.publish", {"seq": 0, "n": 300, "to": sink}, key="pub",
                         topic=topic).result(30)  # fmt: skip
    service = journal_service(kafka_bootstrap, group, topic, out,
                              extra=["-X", "queue.buffering.max.messages=1"])  # fmt: skip
    service.wait_ready(30)
    wait_until(lambda: any(s.seq == -1 for s in read_journal(out)), 20, "the publisher to start")
    started = read_journal(out)[-1]
    with Producer({"bootstrap.servers": kafka_bootstrap}) as producer:
        other = 1 - started.partition
        for i in range(20):
            value = encode_envelope("j.async", {"seq": i})
            headers = [("event_type", b"j.async")]
            producer.send(topic, value, key=f"o{i}", headers=headers, partition=other).result(30)
    wait_until(lambda: sum(s.key.startswith("o") for s in read_journal(out)) == 20, 30, "others")
    order = [s.key for s in read_journal(out)]
    assert order.index("pub") + 1 == order.index("pub", order.index("pub") + 1), json.dumps(
        order[:40]
    )
    assert len(read_all(kafka_bootstrap, sink, 300)) == 300
