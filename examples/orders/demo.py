"""End-to-end demo: topics, the service, 1,000 orders, invoices out, bad orders in the DLQ.

Run by ``make demo`` against the local broker.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer

from examples.orders.produce import produce

GROUP = "orders-demo"
ROOT = Path(__file__).resolve().parents[2]
STREAMKIT = str(Path(sys.executable).with_name("streamkit"))


def count(bootstrap: str, topic: str, expected: int, timeout: float) -> int:
    """Count records of ``topic`` until ``expected`` or ``timeout`` seconds."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen, deadline = 0, time.monotonic() + timeout
    while seen < expected and time.monotonic() < deadline:
        seen += sum(1 for m in consumer.consume(500, 0.5) if m.error() is None)
    consumer.close()
    return seen


def next_steps(bootstrap: str, dlq: str) -> list[str]:
    """What to type after the demo, each line as it can be pasted into a shell."""
    sk = ".venv/bin/streamkit"
    return [
        f"demo: the local broker is still running at {bootstrap}. Type next:",
        f"  {sk} dlq list {dlq} -b {bootstrap}     # the dead-lettered orders",
        f"  {sk} dlq stats {dlq} -b {bootstrap}    # counted by error type",
        f"  {sk} replay {dlq} --dry-run -b {bootstrap}",
        '  eval "$(scripts/kafka-local env)"   # then streamkit finds this broker without -b',
        "  source .venv/bin/activate           # then `streamkit` alone works too",
        "  scripts/kafka-local stop            # stop the broker (or: make broker-stop)",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap-servers", "-b", default="localhost:9092")
    bootstrap = parser.parse_args().bootstrap_servers
    run_id = time.strftime("%H%M%S")
    orders, invoices_topic = f"orders-{run_id}", f"invoices-{run_id}"
    base = [STREAMKIT]
    module = "examples.orders.handlers"
    common = ["-b", bootstrap, "-g", GROUP, "-t", orders]
    # The source topic, its retry tiers and DLQ; then the topic invoices are published to.
    ensure = [*base, "topics", "ensure", module, *common, "--partitions", "3"]
    subprocess.run(ensure, check=True, cwd=ROOT)
    create = [*base, "topics", "create", invoices_topic, "-p", "3", "--if-not-exists"]
    subprocess.run([*create, "-b", bootstrap], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    env = {
        **os.environ,
        "STREAMKIT_METRICS_PORT": "0",
        "STREAMKIT_PUBLISH_TOPICS": f"invoice.requested={invoices_topic}",
    }
    service = subprocess.Popen([*base, "run", module, *common], cwd=ROOT, env=env)
    dlq = f"{orders}.{GROUP}.dlq"
    try:
        produce(bootstrap, 1000, topic=orders)
        invoices = count(bootstrap, invoices_topic, 995, timeout=60)
        dead = count(bootstrap, dlq, 5, timeout=30)
    finally:
        service.send_signal(signal.SIGTERM)
        code = service.wait(60)
    print(
        f"\ndemo: 1000 orders in, {invoices} invoices out, {dead} orders dead-lettered "
        f"after 3 attempts; service exit code {code}"
    )
    print("\n".join(next_steps(bootstrap, dlq)))
    return 0 if invoices >= 995 and dead >= 5 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
