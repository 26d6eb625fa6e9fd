"""The ``streamkit`` command line: thin wrappers that parse, configure, call and exit."""

from streamkit.cli.main import main

__all__ = ["main"]
