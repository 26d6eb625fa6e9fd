"""What the fault scenarios share: sequenced producing, a journal service, DLQ read-back."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from streamkit import Producer
from tests.faults.verifier import Crash, Produced, read_journal
from tests.integration.helpers import ROOT, Service, committed, read_all, wait_until

MODULE = "tests.faults.services.journal"
KAFKA_LOCAL = str(ROOT / "scripts" / "kafka-local")
# A killed member leaves the group in seconds; commits often so a crash repeats little.
FAST_ENV = {
    "STREAMKIT_CHECK_TOPICS": "false",
    "STREAMKIT_COMMIT_INTERVAL": "0.2",
    "STREAMKIT_KAFKA": "session.timeout.ms=6000",
}


def produce_seq(
    bootstrap: str,
    topic: str,
    *,
    keys: int,
    per_key: int,
    event_type: str = "j.sync",
    extra: dict[str, Any] | None = None,
    key_prefix: str = "k",
) -> list[Produced]:
    """Publish ``per_key`` records for each of ``keys`` keys, interleaved, seq in the payload."""
    plan = [(f"{key_prefix}{k}", s) for s in range(per_key) for k in range(keys)]
    with Producer({"bootstrap.servers": bootstrap, "linger.ms": 5}) as producer:
        sent = [
            (key, seq, producer.publish(event_type, {"seq": seq, **(extra or {})}, key=key,
                                        topic=topic))
            for key, seq in plan
        ]  # fmt: skip
        out = []
        for key, seq, delivery in sent:
            result = delivery.result(60)
            out.append(Produced(result.partition, result.offset, key, seq))
    return out


class SteadyProducer(threading.Thread):
    """Publishes ``rate`` records a second in 10 ms slices until stopped."""

    def __init__(self, bootstrap: str, topic: str, rate: int, keys: int, **extra: Any) -> None:
        super().__init__(daemon=True)
        self.keys, self.extra = keys, extra
        self.event_type = "j.async" if "sleep" in extra else "j.sync"
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        self.topic, self.rate = topic, rate
        self.sent: list[tuple[str, int, Any]] = []
        self.halt = threading.Event()

    def run(self) -> None:
        seqs = [0] * self.keys
        started, n = time.monotonic(), 0
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate)
            for _ in range(due - n):
                k = n % self.keys
                key = f"k{k}"
                data = {"seq": seqs[k], **self.extra}
                delivery = self.producer.publish(self.event_type, data, key=key, topic=self.topic)
                self.sent.append((key, seqs[k], delivery))
                seqs[k] += 1
                n += 1
            time.sleep(0.01)

    def results(self) -> list[Produced]:
        """Stop, flush, and return every record with where the broker stored it."""
        self.halt.set()
        self.join(10)
        self.producer.flush(60)
        out = []
        for key, seq, delivery in self.sent:
            r = delivery.result(60)
            out.append(Produced(r.partition, r.offset, key, seq))
        self.producer.close()
        return out


def journal_service(
    bootstrap: str,
    group: str,
    topic: str,
    out: Path,
    *,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> Service:
    """`streamkit run` of the journal service, appending to ``out``."""
    return Service(
        MODULE,
        bootstrap=bootstrap,
        group=group,
        topics=[topic],
        out=out,
        extra=extra,
        env={**FAST_ENV, **(env or {})},
    )


def kill_and_record(
    service: Service, bootstrap: str, group: str, topic: str, parts: int, out: Path
) -> Crash:
    """SIGKILL ``service``, then note the group's commits and the journal's length."""
    service.kill()
    return Crash(committed(bootstrap, group, topic, parts), len(read_journal(out)))


def wait_seen(out: Path, produced: Iterable[Produced], timeout: float, also: int = 0) -> None:
    """Until every produced (key, seq) is in the journal (``also``: that many in the DLQ)."""
    wanted = {(p.key, p.seq) for p in produced}
    need = len(wanted) - also

    def enough() -> bool:
        return len(wanted & {(s.key, s.seq) for s in read_journal(out)}) >= need

    wait_until(enough, timeout, f"{need} distinct records in the journal", every=0.2)


def dead_letters(bootstrap: str, dlq: str, expected: int, timeout: float = 30) -> list[Any]:
    """The DLQ's records (``expected`` of them, or fewer once ``timeout`` passed)."""
    return read_all(bootstrap, dlq, expected, timeout)


def dead_ids(msgs: Iterable[Any]) -> list[tuple[str, int]]:
    """(key, seq) of dead-lettered journal records whose value still parses."""
    ids = []
    for msg in msgs:
        try:
            seq = int(json.loads(msg.value())["data"]["seq"])
        except (TypeError, ValueError, KeyError, RecursionError):
            continue
        ids.append(((msg.key() or b"-").decode("utf-8", "backslashreplace"), seq))
    return ids


def log_events(service: Service) -> list[dict[str, Any]]:
    """The service's JSON log lines (non-JSON lines, e.g. librdkafka's, are skipped)."""
    out = []
    for line in service.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 once it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+)", text)
    return int(match.group(1)) if match else 0


def timed_stop(service: Service, sig: signal.Signals, timeout: float) -> tuple[int | None, float]:
    """Send ``sig`` and return (exit code or None if still running after ``timeout``, seconds)."""
    started = time.monotonic()
    service.signal(sig)
    try:
        code: int | None = service.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - started


class PrivateBroker:
    """A second `scripts/kafka-local` broker (own KAFKA_LOCAL_HOME) a test may stop at will.

    The session broker stays untouched. The jars are shared with the session broker's state
    directory via a symlink so nothing is downloaded twice.
    """

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        jars = Path(os.environ.get("KAFKA_LOCAL_HOME", ROOT / ".kafka-local")) / "jars"
        if jars.is_dir() and not (home / "jars").exists():
            (home / "jars").symlink_to(jars)
        self.env = {**os.environ, "KAFKA_LOCAL_HOME": str(home)}
        self.bootstrap = ""  # set by the first `start`

    def run(self, *args: str, timeout: float = 180) -> str:
        """Run a kafka-local command; return its last stdout line; fail on non-zero exit."""
        done = subprocess.run(
            [KAFKA_LOCAL, *args], env=self.env, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"kafka-local {' '.join(args)} failed: {done.stderr[-2000:]}")
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""
