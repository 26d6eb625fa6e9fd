"""The ``streamkit`` command group."""

from __future__ import annotations

import click

from streamkit._version import __version__
from streamkit.cli.deploy import deploy
from streamkit.cli.dlq import dlq
from streamkit.cli.lag import lag
from streamkit.cli.produce import produce
from streamkit.cli.replay import replay
from streamkit.cli.run import run
from streamkit.cli.schemas import schemas
from streamkit.cli.topics import topics


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="streamkit")
def cli() -> None:
    """streamkit: typed Kafka event handlers for Python services.

    \b
    Run a service:        streamkit run myservice.handlers --group orders
    Create retry topics:  streamkit topics ensure myservice.handlers --group orders
    """


cli.add_command(run)
cli.add_command(topics)
cli.add_command(replay)
cli.add_command(dlq)
cli.add_command(produce)
cli.add_command(lag)
cli.add_command(schemas)
cli.add_command(deploy)


def main() -> None:
    """Console-script entry point."""
    cli()
