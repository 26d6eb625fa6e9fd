"""`make soak`: a steady stream, a SIGKILL of the service every minute, lost/duplicates/RSS.

    SOAK_SECONDS=600 SOAK_RATE=200 SOAK_KILL_EVERY=60 python -m tests.faults.soak BOOTSTRAP

Produces ``SOAK_RATE`` records a second over 50 keys for ``SOAK_SECONDS``, runs the journal
service and SIGKILLs it (then starts a new one) every ``SOAK_KILL_EVERY`` seconds. Prints a
line every 10 s (produced, handled, RSS of the running service), then the verifier's
summary and each service life's RSS at 10 s and at its end. Exits 1 when a record is lost,
a duplicate is not explained by a kill, or RSS at the end of a life grew by more than 25 %
(and 16 MiB) from the first life's. Not part of `make test`.
"""

from __future__ import annotations

import atexit
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from tests.faults.harness import SteadyProducer, journal_service, kill_and_record, rss_kib
from tests.faults.verifier import Crash, read_journal, verify
from tests.integration.helpers import RUNNING, Service, wait_until

PARTITIONS = 3


def main(bootstrap: str) -> int:
    seconds = float(os.environ.get("SOAK_SECONDS", "600"))
    rate = int(os.environ.get("SOAK_RATE", "200"))
    kill_every = float(os.environ.get("SOAK_KILL_EVERY", "60"))
    unique = uuid.uuid4().hex[:8]
    topic, group = f"soak-{unique}", f"soak-{unique}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)
    work = Path(tempfile.mkdtemp(prefix="streamkit-soak-"))
    out = work / "journal.txt"
    print(f"soak: {seconds:.0f}s at {rate}/s, SIGKILL every {kill_every:.0f}s; topic {topic}")
    producer = SteadyProducer(bootstrap, topic, rate, keys=50)
    producer.start()
    crashes: list[Crash] = []
    lives: list[list[int]] = []  # RSS samples (KiB) per service life
    service = _start(bootstrap, group, topic, out, lives)
    t0 = last_kill = next_print = time.monotonic()
    while time.monotonic() - t0 < seconds:
        time.sleep(1)
        now = time.monotonic()
        lives[-1].append(rss_kib(service.proc.pid))
        if now >= next_print:
            print(f"  t={now - t0:5.0f}s produced={len(producer.sent)} "
                  f"handled={len(read_journal(out))} rss={lives[-1][-1] / 1024:.1f}MiB",
                  flush=True)  # fmt: skip
            next_print += 10
        if now - last_kill >= kill_every and seconds - (now - t0) > 5:
            crashes.append(kill_and_record(service, bootstrap, group, topic, PARTITIONS, out))
            print(f"  t={now - t0:5.0f}s SIGKILL #{len(crashes)}", flush=True)
            service, last_kill = _start(bootstrap, group, topic, out, lives), now
    produced = producer.results()
    wanted = {(p.key, p.seq) for p in produced}
    wait_until(lambda: wanted <= {(s.key, s.seq) for s in read_journal(out)}, 180,
               "every record handled", every=1)  # fmt: skip
    lives[-1].append(rss_kib(service.proc.pid))
    code = service.stop(60)
    report = verify(f"soak {seconds:.0f}s", produced, read_journal(out), crashes=crashes)
    print(report.summary)
    print(f"events={len(produced)} kills={len(crashes)} lost={len(report.lost)} "
          f"duplicates={report.allowed_duplicates} (all after the last commit before a kill) "
          f"unexplained={sum(n for _, n in report.duplicated)} final exit={code}")  # fmt: skip
    return 0 if report.ok and code == 0 and _rss_flat(lives) else 1


def _start(bootstrap: str, group: str, topic: str, out: Path, lives: list[list[int]]) -> Service:
    service = journal_service(bootstrap, group, topic, out)
    service.wait_ready(60)
    lives.append([])
    return service


def _rss_flat(lives: list[list[int]]) -> bool:
    """Print each life's RSS at 10 s and at its end; flat = the last life ends near the first."""
    ends = []
    for i, samples in enumerate(lives):
        if samples:
            at10 = samples[min(9, len(samples) - 1)]
            ends.append(samples[-1])
            print(f"  life {i + 1}: rss at 10s {at10 / 1024:.1f}MiB, at end "
                  f"{samples[-1] / 1024:.1f}MiB, max {max(samples) / 1024:.1f}MiB")  # fmt: skip
    if len(ends) < 2:
        return True
    flat = ends[-1] <= max(ends[0] * 1.25, ends[0] + 16 * 1024)
    print(f"rss start={ends[0] / 1024:.1f}MiB end={ends[-1] / 1024:.1f}MiB -> "
          f"{'flat' if flat else 'GROWING'}")  # fmt: skip
    return flat


def _kill_leftovers() -> None:
    for service in RUNNING:  # an interrupted soak leaves no service behind
        if service.proc.poll() is None:
            service.proc.kill()


if __name__ == "__main__":
    atexit.register(_kill_leftovers)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.faults.soak BOOTSTRAP")
    sys.exit(main(sys.argv[1]))
