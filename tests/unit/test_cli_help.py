"""Help text: every option explained, no leftover reST markup, defaults written one way."""

from __future__ import annotations

import re
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from streamkit.cli.main import cli


def _commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


COMMANDS = list(_commands())


def _resolve(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_no_markup_and_one_way_of_writing_defaults(path: tuple[str, ...]) -> None:
    text = _help(path)
    assert "``" not in text
    assert not re.search(r"\[(env|default) [^:]", text), "write [env: X] and [default: Y]"


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_option_says_what_it_does(path: tuple[str, ...]) -> None:
    command = _resolve(path)
    for param in command.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.help, f"{' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize(
    "path",
    [c for c in COMMANDS if not isinstance(_resolve(c), click.Group) and c[0] != "run"],
    ids=" ".join,
)
def test_every_operator_command_has_json_output(path: tuple[str, ...]) -> None:
    assert any(p.name == "as_json" for p in _resolve(path).params), " ".join(path)
