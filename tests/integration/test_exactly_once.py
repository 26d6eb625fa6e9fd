"""Exactly-once mode on the real broker: SIGKILLs and a zombie, checked output by output."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.eos_reader import outputs
from tests.integration.helpers import (
    Service,
    committed,
    end_offsets,
    ensure_failure_topics,
    produce_events,
    wait_until,
)
from tests.integration.services.relay import router
from tests.integration.verifier import handled_lines, kill_then_drain

pytestmark = pytest.mark.kafka
MODULE = "tests.integration.services.relay"
EVENTS = 20_000


def _service(c: dict[str, Any], tmp_path: Path, **env: str) -> Service:
    return Service(MODULE, bootstrap=c["bootstrap"], group=c["group"], topics=[c["source"]],
                   out=tmp_path / "handled.txt",
                   env={"STREAMKIT_TEST_OUTPUT_TOPIC": c["out"], "STREAMKIT_COMMIT_INTERVAL": "0.2",
                        # a killed member's partitions move after 6 s, not librdkafka's 45 s
                        "STREAMKIT_KAFKA": '{"session.timeout.ms": "6000"}', **env})  # fmt: skip


def _handled(tmp_path: Path) -> int:
    return handled_lines(tmp_path / "handled.txt")


def _setup(
    kafka_bootstrap: str, make_topic: Any, unique: str, events: int, keys: int = 100
) -> dict[str, Any]:
    c = {"bootstrap": kafka_bootstrap, "group": f"eos-{unique}",
         "source": make_topic("eos-in", partitions=3),
         "out": make_topic("eos-out", partitions=3)}  # fmt: skip
    ensure_failure_topics(kafka_bootstrap, router, c["source"], c["group"])
    produce_events(
        kafka_bootstrap,
        c["source"],
        [("order.created", {"n": n}, f"k{n % keys}") for n in range(events)],
    )
    return c


@pytest.mark.timeout(420)
@pytest.mark.parametrize("guarantee", ["exactly-once", "at-least-once"])
def test_each_input_has_one_output_through_five_sigkills(
    guarantee: str, kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    # Contract: exactly-once -- a read_committed reader sees each input's output exactly
    # once, through 5 SIGKILLs at random points (mid-transaction). at-least-once, the same
    # run: nothing lost, but duplicates (which proves the check can fail).
    c = _setup(kafka_bootstrap, make_topic, unique, EVENTS)
    env = {"STREAMKIT_GUARANTEE": guarantee, "STREAMKIT_TRANSACTIONAL_ID": f"relay-{unique}"}
    kill_then_drain(
        lambda: _service(c, tmp_path, **env),
        lambda: _handled(tmp_path),
        events=EVENTS, kills=5, seed=unique, bootstrap=kafka_bootstrap,
        group=c["group"], topic=c["source"], partitions=3,
    )  # fmt: skip
    seen = outputs(kafka_bootstrap, c["out"], 3)
    lost = [n for n in range(EVENTS) if seen[n] == 0]
    doubled = sum(v - 1 for v in seen.values() if v > 1)
    print(f"\nverifier [{guarantee}]: {EVENTS} in, 5 kills, lost={len(lost)}, duplicates={doubled}")
    assert lost == []
    if guarantee == "exactly-once":
        assert doubled == 0
    else:
        assert doubled > 0  # the same kills double outputs without transactions


@pytest.mark.timeout(240)
def test_a_zombie_is_fenced_and_exits_with_one_line(
    kafka_bootstrap: str, make_topic: Any, unique: str, tmp_path: Path
) -> None:
    # Contract: a second process with the same transactional.id fences the first, which
    # exits non-zero with one clear line and never produces outside a transaction.
    # 3 keys, 10 ms each, in key order: the first process is still busy (~10 s of work)
    # when the second one starts, so it produces and commits after being fenced.
    events = 3_000
    c = _setup(kafka_bootstrap, make_topic, unique, events, keys=3)
    env = {"STREAMKIT_GUARANTEE": "exactly-once", "STREAMKIT_TRANSACTIONAL_ID": f"zombie-{unique}",
           "STREAMKIT_TEST_SLOW_MS": "10"}  # fmt: skip
    first = _service(c, tmp_path, **env)
    wait_until(lambda: _handled(tmp_path) >= 300, 60, "the first process to be busy")
    second = _service(c, tmp_path, **env)
    try:
        code = first.wait(60)
    except subprocess.TimeoutExpired:
        first.kill()
        raise AssertionError(f"not fenced:\n{first.log.read_text()[-3000:]}") from None
    assert code != 0
    fenced = [line for line in first.log.read_text().splitlines() if "fenced" in line]
    assert fenced and any(line.startswith("streamkit: ") for line in fenced), fenced
    # The process that fenced it takes over the backlog and finishes it, in time: ~9 s of
    # handler work left (3 keys x 10 ms, in key order), bounded at 60 s. 3 keys may leave
    # a partition empty: it never gets a committed offset, so only partitions with data.
    ends = {p: end for p, end in end_offsets(kafka_bootstrap, c["source"], 3).items() if end}
    started = time.monotonic()

    def finished() -> bool:
        done = committed(kafka_bootstrap, c["group"], c["source"], 3)
        return all(done[p] == end for p, end in ends.items())

    wait_until(finished, 120, "the new owner to commit the whole backlog")
    took = time.monotonic() - started
    # Its commit points drain only work handed to handlers, not the whole backlog in
    # memory (~2,700 events, ~9 s at best, tens of seconds on a loaded machine: past
    # transaction.timeout.ms the broker aborts it and fences the producer).
    longest = _longest_transaction(second.port)
    assert second.stop() == 0
    seen = outputs(kafka_bootstrap, c["out"], 3)
    print(f"\nzombie: new owner finished the backlog in {took:.1f} s, longest txn {longest} s")
    assert longest <= 5.0
    assert sorted(seen) == list(range(events)) and set(seen.values()) == {1}


def _longest_transaction(port: int) -> float:
    """Upper bound of the longest transaction, from the duration histogram's buckets."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    buckets = {
        sample.labels["le"]: sample.value
        for family in text_string_to_metric_families(text.decode())
        if family.name == "streamkit_transaction_duration_seconds"
        for sample in family.samples
        if sample.name.endswith("_bucket")
    }
    total = buckets["+Inf"]
    assert total > 0, "no transaction committed"
    return min(float(le) for le, count in buckets.items() if count == total)
