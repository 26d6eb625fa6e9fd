"""Publish sample orders: ``python -m examples.orders.produce -b HOST:PORT -n 1000``."""

from __future__ import annotations

import argparse

from streamkit import Producer


def produce(bootstrap: str, count: int, bad_every: int = 200, topic: str = "orders") -> int:
    """Publish ``count`` orders (one in ``bad_every`` with a negative amount)."""
    with Producer({"bootstrap.servers": bootstrap}) as producer:
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
    parser.add_argument("-t", "--topic", default="orders")
    args = parser.parse_args()
    print(f"published {produce(args.bootstrap_servers, args.count, topic=args.topic)} orders")


if __name__ == "__main__":
    main()
