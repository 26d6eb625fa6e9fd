"""Errors of the operator tools; the CLI turns each into one line on stderr."""

from __future__ import annotations

from streamkit.errors import StreamkitError


class OpsError(StreamkitError):
    """An operator command cannot go on: bad input, unknown topic or record, broker error."""


class UnknownTopicsError(OpsError):
    """A topic the command reads or writes does not exist on the cluster."""

    def __init__(self, topics: list[str], hint: str = "") -> None:
        names = ", ".join(sorted(topics))
        noun = "topic" if len(topics) == 1 else "topics"
        super().__init__(f"unknown {noun}: {names}" + (f" ({hint})" if hint else ""))
        self.topics = sorted(topics)


class InvalidInputError(OpsError):
    """Input given by the operator (JSON, a file line) cannot be used."""


class RecordNotFoundError(OpsError):
    """No record at the requested partition and offset."""


class UnreplayableRecordError(OpsError):
    """A dead-letter record lacks the headers needed to find its default replay target."""
