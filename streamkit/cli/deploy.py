"""``streamkit deploy keda``: print a KEDA ScaledObject for a service's source topics."""

from __future__ import annotations

import click

from streamkit.cli.common import friendly_errors, kafka_options
from streamkit.cli.options import connect, group_router_sources, json_option
from streamkit.ops.keda import MAX_REPLICAS_HINT, KedaPlan, scaled_object, to_yaml
from streamkit.ops.render import print_json


@click.group()
def deploy() -> None:
    """Generate deployment objects (Kubernetes, KEDA) from a service's router."""


@deploy.command()
@click.argument("module")
@click.option("--group", "-g", help="Consumer group id [env: STREAMKIT_GROUP_ID].")
@click.option(
    "--topic",
    "-t",
    "source_topics",
    multiple=True,
    help="Source topic (repeatable) "
    "[env: STREAMKIT_TOPICS, comma-separated; default: the router's topics]",
)
@click.option(
    "--max-replicas",
    type=click.IntRange(min=1),
    help=f"Most replicas, {MAX_REPLICAS_HINT} [default: read from the broker].",
)
@click.option(
    "--min-replicas",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Fewest replicas; 0 scales to zero, but then a delayed retry waits until a "
    "source topic has lag again (retry tiers are not triggers).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=6000.0,
    show_default=True,
    help="Events/s one member handles (measure yours); lagThreshold = rate x catch-up.",
)
@click.option(
    "--catch-up",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Seconds one member's share of the lag may take to drain.",
)
@click.option("--name", help="ScaledObject and workload name [default: the group].")
@click.option(
    "--kind",
    type=click.Choice(["Deployment", "StatefulSet"]),
    default="Deployment",
    show_default=True,
    help="Kind of the workload to scale.",
)
@click.option("--auth", metavar="NAME", help="TriggerAuthentication for SASL/TLS brokers.")
@json_option
@kafka_options
@friendly_errors
def keda(
    module: str,
    group: str | None,
    source_topics: tuple[str, ...],
    max_replicas: int | None,
    min_replicas: int,
    rate: float,
    catch_up: float,
    name: str | None,
    kind: str,
    auth: str | None,
    as_json: bool,
    bootstrap_servers: str | None,
    kafka: tuple[str, ...],
) -> None:
    """Print a KEDA ScaledObject for MODULE: one lag trigger per source topic.

    \b
    streamkit deploy keda myservice.handlers --group orders > scaledobject.yaml
    """
    group, _, sources = group_router_sources(module, group, source_topics)
    if max_replicas is None:
        cluster = connect(bootstrap_servers, kafka)
        max_replicas = max(len(cluster.partitions(topic)) for topic in sources)
    plan = KedaPlan(
        group=group, topics=sources, max_replicas=max_replicas, min_replicas=min_replicas,
        rate=rate, catch_up=catch_up, name=name, kind=kind, auth=auth,
    )  # fmt: skip
    if as_json:  # kubectl apply -f takes JSON as well
        print_json(scaled_object(plan))
        return
    click.echo(
        f"# streamkit deploy keda {module} --group {group}: lagThreshold {plan.lag_threshold}"
        f" = {plan.rate:g} events/s x {plan.catch_up:g} s, maxReplicaCount {max_replicas}\n"
        + to_yaml(scaled_object(plan)),
        nl=False,
    )
