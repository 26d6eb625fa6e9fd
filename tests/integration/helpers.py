"""Helpers for integration tests: produce, read back, run `streamkit run` as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamkit import Producer, Router
from streamkit.admin import connect, ensure_topics

ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = str(Path(sys.executable).with_name("streamkit"))


Bootstrap = str | Mapping[str, str]  # an address, or librdkafka settings (secured clusters)


def client(bootstrap: Bootstrap) -> dict[str, str]:
    """librdkafka settings for ``bootstrap``."""
    if isinstance(bootstrap, str):
        return {"bootstrap.servers": bootstrap}
    return dict(bootstrap)


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll ``predicate`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def ensure_failure_topics(bootstrap: Bootstrap, router: Router, topic: str, group: str) -> None:
    """Create ``topic``'s retry tiers and DLQ for ``group`` (as `streamkit topics ensure`)."""
    admin, metadata = connect(client(bootstrap), 10)
    ensure_topics(admin, metadata, router.derived_topics([topic], group))


def produce_events(
    bootstrap: Bootstrap, topic: str, events: Iterable[tuple[str, Any, str | None]]
) -> int:
    """Publish (event_type, data, key) envelopes; return how many were acknowledged."""
    count = 0
    with Producer(client(bootstrap)) as producer:
        deliveries = [
            producer.publish(etype, data, key=key, topic=topic) for etype, data, key in events
        ]
        for delivery in deliveries:
            delivery.result(30)
            count += 1
    return count


def produce_raw(
    bootstrap: Bootstrap, topic: str, records: Iterable[tuple[bytes | None, bytes | None, Any]]
) -> None:
    """Send raw (key, value, headers) records as they are."""
    with Producer(client(bootstrap)) as producer:
        for d in [producer.send(topic, v, key=k, headers=h) for k, v, h in records]:
            d.result(30)


def read_all(bootstrap: Bootstrap, topic: str, expected: int, timeout: float = 30) -> list[Any]:
    """Read ``expected`` records of ``topic`` from the beginning (throwaway group)."""
    consumer = Consumer(
        {
            **client(bootstrap),
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < expected and time.monotonic() < deadline:
            out += [m for m in consumer.consume(1000, 0.2) if m.error() is None]
    finally:
        consumer.close()
    return out


def committed(bootstrap: Bootstrap, group: str, topic: str, partitions: int) -> dict[int, int]:
    """The group's committed offset per partition (-1001 when none)."""
    consumer = Consumer({**client(bootstrap), "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], 15)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps}


def end_offsets(bootstrap: Bootstrap, topic: str, partitions: int) -> dict[int, int]:
    """The high watermark per partition (asked again, for up to 15 s, while a topic created
    moments ago has no leader known yet)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            return _end_offsets(bootstrap, topic, partitions)
        except KafkaException as exc:
            if exc.args[0].code() not in NOT_READY or time.monotonic() > deadline:
                raise
        time.sleep(0.2)


NOT_READY = {  # a new topic's leader not in the metadata yet: ask again
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


def _end_offsets(bootstrap: Bootstrap, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({**client(bootstrap), "group.id": "watermarks"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 15)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_status(port: int, path: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


RUNNING: list[Service] = []  # killed after each test by the conftest, even when it failed


class Service:
    """`streamkit run MODULE` in a subprocess, with its /readyz and its output file."""

    def __init__(
        self,
        module: str,
        *,
        bootstrap: str,
        group: str,
        topics: list[str],
        out: Path,
        extra: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.out = out
        cmd = [
            STREAMKIT,
            "run",
            module,
            "-b",
            bootstrap,
            "-g",
            group,
            "--metrics-port",
            str(self.port),
            "--log-format",
            "json",
            *(extra or []),
        ]
        for topic in topics:
            cmd += ["-t", topic]
        self.log = out.with_suffix(f".{self.port}.log")
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "STREAMKIT_TEST_OUT": str(out), **(env or {})},
        )
        RUNNING.append(self)

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited early:\n{self.log.read_text()[-3000:]}")
            return http_status(self.port, "/readyz") == 200

        wait_until(ready, timeout, "the service to be ready", every=0.1)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._log_file.close()

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.wait(30)


def read_lines(path: Path) -> list[list[str]]:
    """The recorder file's lines, split on spaces (missing file: none)."""
    if not path.exists():
        return []
    return [line.split(" ") for line in path.read_text().splitlines() if line]
