"""The README is a contract: its Python blocks run, its `streamkit` command lines parse.

Python blocks are found, linted (ruff) and run with pytest-examples. Settings on a block's
fence line, e.g. ```python {group="quickstart" broker="required"}:

- ``group="NAME"``: the block runs with the globals left by the earlier blocks of that
  group (a snippet may use the ``router`` a previous one defined);
- ``broker="required"``: the block runs against the test broker, whose address it finds
  in ``STREAMKIT_BOOTSTRAP_SERVERS`` (without one, the test skips as integration tests do);
- ``test="skip" reason="..."``: not run, for the stated reason (a reason is required).

After a block ran, every ``test_*`` function it defined that takes no argument is called
(coroutines with ``asyncio.run``), so a snippet written as a test is also executed.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from pytest_examples import CodeExample, EvalExample, find_examples

from streamkit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
EXAMPLES = list(find_examples(README))
GROUPS: dict[str, dict[str, Any]] = {}  # group name -> globals after its latest block


def test_the_readme_has_python_blocks() -> None:
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_python_block_lints_and_runs(
    example: CodeExample, eval_example: EvalExample, request: pytest.FixtureRequest
) -> None:
    settings = example.prefix_settings()
    if settings.get("test") == "skip":
        assert settings.get("reason"), f'{example}: test="skip" needs reason="..."'
        pytest.skip(settings["reason"])
    group = settings.get("group")
    # A user's imports sort streamkit with the third-party ones (I); a later block of a
    # group uses names an earlier one defined (F821), which running it checks instead.
    ignore = ["I", *(["F821"] if group in GROUPS else [])]
    eval_example.set_config(line_length=100, ruff_select=["E", "F", "B", "UP"],
                            ruff_ignore=ignore, target_version="py310")  # fmt: skip
    eval_example.lint_ruff(example)
    env = {}
    if settings.get("broker") == "required":
        env["STREAMKIT_BOOTSTRAP_SERVERS"] = request.getfixturevalue("kafka_bootstrap")
    with _environ(env):
        namespace = eval_example.run(example, module_globals=GROUPS.get(group or "", {}))
        _call_tests(namespace)
    if group:
        GROUPS[group] = namespace


def _call_tests(namespace: dict[str, Any]) -> None:
    for name, fn in namespace.items():
        if not (name.startswith("test_") and inspect.isfunction(fn)):
            continue
        if inspect.signature(fn).parameters:
            continue  # takes fixtures: pytest runs it where users put it, not here
        result = fn()
        if inspect.iscoroutine(result):
            asyncio.run(result)


class _environ:
    """Set environment variables for the duration of a block."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self.values.items():
            self.saved[key] = os.environ.get(key)
            os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _command_lines() -> Iterator[tuple[int, list[str]]]:
    """Every ``streamkit ...`` line of the README's bash blocks, split as a shell would."""
    in_bash = False
    for number, line in enumerate(README.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_bash = not in_bash and line.strip() == "```bash"
            continue
        words = shlex.split(line.split(" #")[0]) if in_bash else []
        if words and words[0] == "streamkit":
            yield number, words[1:]


COMMANDS = list(_command_lines())


def test_the_readme_shows_streamkit_commands() -> None:
    assert len(COMMANDS) >= 10


@pytest.mark.parametrize(("line", "args"), COMMANDS, ids=[f"README:{n}" for n, _ in COMMANDS])
def test_command_line_parses(line: int, args: list[str]) -> None:
    """Each documented command names real subcommands and options with valid values."""
    command: click.Command = cli
    context = None
    while isinstance(command, click.Group):
        name, *args = args
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"README line {line}: no command {name!r}"
        context = click.Context(command, info_name=command.name, parent=context)
        command = found
    with command.make_context(command.name, list(args), parent=context):
        pass  # parsed: options exist, values convert, required ones are there
