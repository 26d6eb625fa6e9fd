from typing import Any

from streamkit import envelope as env
from streamkit.consumer.parking import H_PARKED, ParkingLot, parked_headers
from streamkit.retry.topics import Tier

SOURCE, TIER1, TIER2 = Tier("o", 0), Tier("o", 1), Tier("o", 2)


class Msg:
    def __init__(self, topic: str, offset: int, headers: Any = None, key: bytes = b"k") -> None:
        self._t, self._o, self._h, self._k = topic, offset, headers, key

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._o

    def key(self) -> bytes:
        return self._k

    def headers(self) -> Any:
        return self._h

    def timestamp(self) -> tuple[int, int]:
        return (1, 5)


def origin(offset: int) -> list[tuple[str, bytes]]:
    return [
        (env.H_ORIGINAL_TOPIC, b"o"),
        (env.H_ORIGINAL_PARTITION, b"0"),
        (env.H_ORIGINAL_OFFSET, str(offset).encode()),
    ]


def test_a_key_parks_behind_its_head_and_unparks_in_order() -> None:
    lot = ParkingLot()
    head = Msg("o", 10)
    key = lot.lot_key(head, head.headers(), SOURCE)
    assert key == ("o", 0, b"k")
    assert lot.park_target(key, head, head.headers(), SOURCE) is None
    lot.failed_to_tier(key, head, head.headers(), SOURCE, "o.g.retry.1", 1000)
    follower = Msg("o", 11)
    target = lot.park_target(key, follower, follower.headers(), SOURCE)
    assert target is not None and target.topic == "o.g.retry.1"
    lot.parked(key, SOURCE)
    headers = parked_headers(follower, follower.headers(), target)
    assert env.header_int(headers, env.H_NOT_BEFORE) == 1000
    assert env.header_int(headers, env.H_ORIGINAL_OFFSET) == 11
    assert (H_PARKED, b"1") in headers

    # The head comes back from tier 1 and fails again: it moves to tier 2 ...
    head_again = Msg("o.g.retry.1", 0, origin(10))
    assert lot.park_target(key, head_again, head_again.headers(), TIER1) is None
    lot.failed_to_tier(key, head_again, head_again.headers(), TIER1, "o.g.retry.2", 2000)
    # ... and its follower, arriving from tier 1, follows it there.
    follower_in_tier1 = Msg("o.g.retry.1", 1, origin(11))
    moved = lot.park_target(key, follower_in_tier1, follower_in_tier1.headers(), TIER1)
    assert moved is not None and moved.topic == "o.g.retry.2"
    lot.parked(key, TIER1)

    # The head succeeds from tier 2; its follower may run now; then the key is free.
    lot.left(
        key, Msg("o.g.retry.2", 0, origin(10)), Msg("o.g.retry.2", 0, origin(10)).headers(), TIER2
    )
    follower_in_tier2 = Msg("o.g.retry.2", 1, origin(11))
    assert lot.park_target(key, follower_in_tier2, follower_in_tier2.headers(), TIER2) is None
    lot.left(key, follower_in_tier2, follower_in_tier2.headers(), TIER2)
    assert len(lot) == 0
    assert lot.park_target(key, Msg("o", 12), Msg("o", 12).headers(), SOURCE) is None


def test_never_parks_a_record_where_it_already_is() -> None:
    lot = ParkingLot()
    key = lot.lot_key(Msg("o", 1), Msg("o", 1).headers(), SOURCE)
    assert key is not None
    lot.failed_to_tier(key, Msg("o", 1), Msg("o", 1).headers(), SOURCE, "o.g.retry.1", 0)
    assert (
        lot.park_target(
            key, Msg("o.g.retry.1", 5, origin(3)), Msg("o.g.retry.1", 5, origin(3)).headers(), TIER1
        )
        is None
    )


def test_revoked_partitions_are_forgotten_and_keyless_records_never_park() -> None:
    lot = ParkingLot()
    key = lot.lot_key(Msg("o", 1), Msg("o", 1).headers(), SOURCE)
    assert key is not None
    lot.failed_to_tier(key, Msg("o", 1), Msg("o", 1).headers(), SOURCE, "o.g.retry.1", 0)
    lot.drop_partition("o", 0)
    assert len(lot) == 0
    assert lot.lot_key(Msg("o", 2, key=None), Msg("o", 2, key=None).headers(), SOURCE) is None  # type: ignore[arg-type]
