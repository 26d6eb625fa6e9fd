"""Minimal reproduction: confluent-kafka and a record whose header NAME is not valid UTF-8.

Plain confluent-kafka, no streamkit. For an upstream report (issue 17, defect 2)::

    python tests/faults/repro_header_segfault.py 127.0.0.1:9092

It creates a one-partition topic, writes one record whose header name is b"\\xff\\xfe"
with a hand-built Produce request (confluent-kafka's producer turns a bytes name into its
``str()`` text, so it cannot write one; Java or Go producers can), consumes it with
confluent-kafka and calls ``msg.headers()`` once, then twice. Each
step runs in a child process so that a crash is reported rather than taken down with it.
Seen with confluent-kafka 2.16.1 / librdkafka 2.16.0: the first call raises
``SystemError: <method 'headers' ...> returned a result with an exception set``; the
second returns a list holding a NULL object; touching that element crashes the interpreter
(SIGSEGV). Not collected by pytest (the file name does not start with ``test_``).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rawproduce import produce as raw_produce  # runs as a plain script, not a package

CHILD = r"""
import sys
from confluent_kafka import Consumer
bootstrap, topic, step = sys.argv[1], sys.argv[2], sys.argv[3]
c = Consumer({"bootstrap.servers": bootstrap, "group.id": "repro-" + topic,
              "auto.offset.reset": "earliest"})
c.subscribe([topic])
msg = None
for _ in range(100):
    msg = c.poll(0.5)
    if msg is not None and msg.error() is None:
        break
assert msg is not None and msg.error() is None, "no record consumed"
print("consumed offset", msg.offset(), "value", msg.value(), flush=True)
try:
    first = msg.headers()
    print("first headers() call returned", first, flush=True)
except BaseException as exc:
    print("first headers() call raised", type(exc).__name__ + ":", exc, flush=True)
if step == "twice":
    second = msg.headers()
    print("second headers() call returned a", type(second).__name__, "of", len(second), flush=True)
    print("touching its first element ...", flush=True)
    name, value = second[0]
    print("name", type(name), flush=True)
    print(repr(name), value, flush=True)
"""


def main() -> int:
    import confluent_kafka
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9092"
    print("python", sys.version.split()[0], "confluent-kafka", confluent_kafka.version(),
          "librdkafka", confluent_kafka.libversion()[0])  # fmt: skip
    topic = f"repro-header-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    raw_produce(bootstrap, topic, 0, [(b"k", b"payload", [(b"\xff\xfe", b"v")])])
    print("produced 1 record with header name b'\\xff\\xfe' to", topic)
    for step in ("once", "twice"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, bootstrap, topic, step],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        print(f"--- child ({step}): exit code {done.returncode}")
        print(done.stdout.rstrip())
        if done.stderr.strip():
            print("stderr:", done.stderr.strip()[-800:])
    admin.delete_topics([topic])[topic].result(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
