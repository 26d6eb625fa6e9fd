"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from streamkit.errors import BrokerUnavailableError, ConfigError, StreamkitError

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CONFIG = 2  # bad usage, module, settings or topology
EXIT_BROKER = 3  # no broker answered
EXIT_LAG = 1  # `streamkit lag --max-lag N`: the lag is above N
EXIT_FAILED = 4  # some records could not be published (replay, produce); rerun to resume
EXIT_INTERRUPTED = 130  # stopped by SIGINT/SIGTERM after committing its progress


def kafka_options(fn: F) -> F:
    """``--bootstrap-servers`` and ``-X key=value`` librdkafka passthrough."""
    fn = click.option(
        "-X",
        "kafka",
        multiple=True,
        metavar="KEY=VALUE",
        help="Any librdkafka property, e.g. -X security.protocol=SASL_SSL (repeatable).",
    )(fn)
    fn = click.option(
        "--bootstrap-servers",
        "-b",
        envvar="STREAMKIT_BOOTSTRAP_SERVERS",
        help="Kafka bootstrap servers [env: STREAMKIT_BOOTSTRAP_SERVERS; default: localhost:9092]",
    )(fn)
    return fn


def parse_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=2")`` -> ``{"a": "1", "b": "2"}``, with a clear error otherwise."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:  # echo no value: it may be a secret
            shown = repr(key) if not sep else "'=...'"
            raise click.BadParameter(f"expected KEY=VALUE, got {shown}", param_hint="-X")
        result[key.strip()] = value
    return result


def settings_overrides(bootstrap_servers: str | None, kafka: tuple[str, ...]) -> dict[str, Any]:
    """Settings fields given on the command line (the rest come from the environment)."""
    overrides: dict[str, Any] = {}
    if bootstrap_servers:
        overrides["bootstrap_servers"] = bootstrap_servers
    if kafka:
        overrides["kafka"] = parse_pairs(kafka)
    return overrides


def announce_connect(bootstrap_servers: str) -> None:
    """``connecting to ...`` on stderr at once, for a person waiting at a terminal.

    Not for pipes and scripts: their stderr stays one error line or nothing.
    """
    if sys.stderr.isatty():
        click.echo(f"streamkit: connecting to {bootstrap_servers} ...", err=True)


def fail(message: str, code: int) -> None:
    """Print one clear line and exit with ``code``."""
    click.echo(f"streamkit: error: {message}", err=True)
    sys.exit(code)


def _first_error(exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}" + (
        f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    )


def friendly_errors(fn: F) -> F:
    """Turn streamkit's errors into one line on stderr and a meaningful exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BrokerUnavailableError as exc:
            fail(str(exc), EXIT_BROKER)
        except (ConfigError, StreamkitError) as exc:
            fail(str(exc), EXIT_CONFIG)
        except ValidationError as exc:  # settings from flags or STREAMKIT_* variables
            fail(f"invalid settings: {_first_error(exc)}", EXIT_CONFIG)

    return wrapper  # type: ignore[return-value]
