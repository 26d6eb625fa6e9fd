"""Publish sample orders: ``python -m examples.orders.produce -b HOST:PORT -n 1000``.

``--schema-registry URL``: Avro orders for ``examples.orders.avro_handlers`` (topic
``orders-avro``), encoded by its codec.
"""

from __future__ import annotations

import argparse
from typing import Any

from streamkit import Producer


def produce(
    bootstrap: str, count: int, bad_every: int = 200, topic: str = "orders", codec: Any = None
) -> int:
    """Publish ``count`` orders (one in ``bad_every`` with a negative amount)."""
    with Producer({"bootstrap.servers": bootstrap}, codec=codec) as producer:
        deliveries = [
            producer.publish(
                "order.created",
                {"order_id": f"o-{i}", "amount_cents": -1 if i % bad_every == 7 else 100 + i},
                key=f"o-{i}",
                topic=topic,
            )
            for i in range(count)
        ]
        for delivery in deliveries:
            delivery.result(30)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-b", "--bootstrap-servers", default="localhost:9092")
    parser.add_argument("-n", "--count", type=int, default=1000)
    parser.add_argument("-t", "--topic", default=None, help="default: orders (orders-avro)")
    parser.add_argument("--schema-registry", help="publish Avro orders through this registry")
    args = parser.parse_args()
    codec = None
    if args.schema_registry:
        from examples.orders.avro_handlers import OrderCreated
        from streamkit.codecs.avro import AvroCodec

        codec = AvroCodec(args.schema_registry, models={"order.created": OrderCreated})
    topic = args.topic or ("orders-avro" if codec else "orders")
    sent = produce(args.bootstrap_servers, args.count, topic=topic, codec=codec)
    print(f"published {sent} orders")


if __name__ == "__main__":
    main()
