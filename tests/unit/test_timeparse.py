"""Times on the command line: durations ago and ISO timestamps, as epoch milliseconds."""

from __future__ import annotations

import pytest

from streamkit.ops.timeparse import human_age, iso, parse_duration, parse_time, parse_timestamp

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("45s", 45),
        ("30m", 1800),
        ("2h", 7200),
        ("1h30m", 5400),
        ("7d", 604_800),
        ("1w", 604_800),
        ("500ms", 0.5),
        ("1.5h", 5400),
        (" 2H ", 7200),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2", "2x", "-2h", "2h-", "yesterday"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_a_duration_is_that_long_ago() -> None:
    assert parse_time("2h", NOW) == NOW - 7_200_000
    assert parse_time("90s", NOW) == NOW - 90_000
    assert parse_time("now", NOW) == NOW


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14T22:13:20+00:00", NOW),
        ("2023-11-15T00:13:20+02:00", NOW),
        ("2023-11-14T22:13:20", NOW),  # naive: UTC, the same on every machine
        ("2023-11-14T22:13:20.250Z", NOW + 250),
        ("2023-11-14", NOW - (22 * 3600 + 13 * 60 + 20) * 1000),
    ],
)
def test_iso_timestamps(text: str, expected: int) -> None:
    assert parse_time(text, NOW) == expected
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "2023-13-01", "12", "2h ago"])
def test_bad_times_name_both_forms(text: str) -> None:
    with pytest.raises(ValueError, match=r"ISO timestamp .* or a duration ago"):
        parse_time(text, NOW)


def test_iso_round_trip() -> None:
    assert iso(NOW + 5) == "2023-11-14T22:13:20.005Z"
    assert parse_time(iso(NOW + 5)) == NOW + 5


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (42.9, "42s"), (303, "5m 3s"), (7800, "2h 10m"), (273_600, "3d 4h"), (-5, "0s")],
)
def test_human_age(seconds: float, text: str) -> None:
    assert human_age(seconds) == text
