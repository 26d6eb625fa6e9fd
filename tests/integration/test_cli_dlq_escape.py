"""Record contents reach the terminal as text: no rich markup, no escape sequences."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamkit import envelope as env
from tests.integration.cli_helpers import DeadLetterSpec, json_of, produce_dead_letters, run_cli

pytestmark = pytest.mark.kafka

OSC_LINK = "\x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07"
COLOUR = "\x1b[31mred\x1b[0m\x1b[2J"  # colour, then "clear the screen"
LONG_TYPE = "t" * 10_000


def _hostile(source: str, group: str) -> list[DeadLetterSpec]:
    return [
        DeadLetterSpec(0, source, group, key=b"[/]", partition=0,
                       user_headers=[("x-link", OSC_LINK.encode()), ("x-colour", COLOUR.encode())]),
        DeadLetterSpec(1, source, group, key=b"[bold]k\x1b[5m", partition=0,
                       event_type=LONG_TYPE, error_type="Boom\u202eevil"),
    ]  # fmt: skip


def _assert_inert(text: str) -> None:
    assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text


def test_list_show_and_stats_escape_every_field_and_json_stays_exact(
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: str
) -> None:
    dlq = make_topic("hostile.dlq", partitions=1)
    produce_dead_letters(kafka_bootstrap, dlq, _hostile("orders", f"g-{unique}"))
    b = ["-b", kafka_bootstrap]

    listed = run_cli("dlq", "list", dlq, *b)
    assert listed.exit_code == 0, listed.output  # a key `[/]` used to be a MarkupError
    _assert_inert(listed.stdout)
    assert "[/]" in listed.stdout and "[bold]k\\x1b[5m" in listed.stdout
    assert "Boom\\u202eevil" in listed.stdout

    stats = run_cli("dlq", "stats", dlq, *b)
    assert stats.exit_code == 0, stats.output
    _assert_inert(stats.stdout)
    assert max(len(line) for line in stats.stdout.splitlines()) < 300  # 10 KB type, capped
    assert "(+9801 chars)" in stats.stdout

    shown = run_cli("dlq", "show", dlq, "-p", "0", "-o", "0", *b)
    assert shown.exit_code == 0, shown.output
    _assert_inert(shown.stdout)
    assert "key: [/]" in shown.stdout
    assert "\\x1b]8;;https://evil.example/\\x07click me" in shown.stdout

    as_json = json_of(run_cli("dlq", "list", dlq, "--json", *b))["records"]
    assert [r["key"] for r in as_json] == ["[/]", "[bold]k\x1b[5m"]
    assert as_json[1]["event_type"] == LONG_TYPE
    details = json_of(run_cli("dlq", "show", dlq, "-p", "0", "-o", "0", "--json", *b))
    assert ["x-link", OSC_LINK] in details["headers"] and ["x-colour", COLOUR] in details["headers"]
    assert [env.HEADER_EVENT_TYPE, "order.created"] in details["headers"]
