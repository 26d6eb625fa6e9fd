"""The secured broker (`scripts/kafka-local start --secure`) for the whole session.

SASL_SSL with SCRAM-SHA-512, ACLs enforced (allow.everyone.if.no.acl.found=false). The
fixture grants the `app` user what each test needs, as the `admin` super user, with
confluent-kafka's AdminClient.create_acls. Like the plaintext broker: skipped locally when
the broker cannot start, a failure under CI.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from tests.integration.helpers import wait_until

ROOT = Path(__file__).resolve().parents[3]
IN_CI = os.environ.get("CI", "").lower() == "true"
PRINCIPAL = "User:app"


def read_properties(path: Path) -> dict[str, str]:
    """A librdkafka properties file (key=value lines, # comments)."""
    pairs = [ln.split("=", 1) for ln in path.read_text().splitlines() if "=" in ln]
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def _kafka_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "kafka-local"), *args, "--secure"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def acl(kind: str, name: str, op: AclOperation, *, prefixed: bool = False) -> AclBinding:
    """An ALLOW binding for the app user on a topic or group."""
    return AclBinding(
        ResourceType.TOPIC if kind == "topic" else ResourceType.GROUP,
        name,
        ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL,
        PRINCIPAL,
        "*",
        op,
        AclPermissionType.ALLOW,
    )


@dataclass
class SecureCluster:
    """Client settings of the secured broker, and ACL management as its super user."""

    properties: Path
    app: dict[str, str]
    admin_settings: dict[str, str]
    password_file: Path
    admin: Any = None
    granted: list[AclBinding] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return self.app["bootstrap.servers"]

    @property
    def other_ca(self) -> str:
        """A CA certificate that did not sign the broker's."""
        return str(Path(self.app["ssl.ca.location"]).with_name("other-ca.pem"))

    def env(self, **overrides: str) -> dict[str, str]:
        """`streamkit` settings for the app user, as the README's snippet sets them."""
        base = {
            "STREAMKIT_BOOTSTRAP_SERVERS": self.bootstrap,
            "STREAMKIT_SECURITY_PROTOCOL": "SASL_SSL",
            "STREAMKIT_SASL_MECHANISM": "SCRAM-SHA-512",
            "STREAMKIT_SASL_USERNAME": "app",
            "STREAMKIT_SASL_PASSWORD_FILE": str(self.password_file),
            "STREAMKIT_SSL_CA_LOCATION": self.app["ssl.ca.location"],
        }
        return {**base, **overrides}

    def topic(self, name: str, partitions: int = 3) -> str:
        self.admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
        return name

    def grant(self, *bindings: AclBinding) -> None:
        for future in self.admin.create_acls(list(bindings)).values():
            future.result(30)
        self.granted += bindings
        # The broker applies ACLs from the metadata log a moment after the controller.
        wait_until(lambda: all(self._present(b) for b in bindings), 15, "ACLs to apply")

    def revoke(self, *bindings: AclBinding) -> None:
        filters = [_filter(b) for b in bindings]
        for future in self.admin.delete_acls(filters).values():
            future.result(30)
        wait_until(lambda: not any(self._present(b) for b in bindings), 15, "ACLs to go")

    def _present(self, binding: AclBinding) -> bool:
        return bool(self.admin.describe_acls(_filter(binding)).result(30))


def _filter(b: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation,
        b.permission_type,
    )  # fmt: skip


@pytest.fixture(scope="session")
def secure_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureCluster]:
    """The secured broker, started by `scripts/kafka-local start --secure` if needed."""
    was_running = _kafka_local("status").returncode == 0
    started = _kafka_local("start")
    if started.returncode != 0:
        reason = f"kafka-local start --secure failed: {started.stderr.strip()[-500:]}"
        if IN_CI:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    path = Path(started.stdout.strip().splitlines()[-1])
    app = read_properties(path)
    secret = tmp_path_factory.mktemp("secrets") / "kafka-password"
    secret.write_text(app["sasl.password"] + "\n")  # as a mounted secret file may end
    cluster = SecureCluster(path, app, read_properties(path.with_name("admin.properties")), secret)
    cluster.admin = AdminClient(cluster.admin_settings)
    yield cluster
    with contextlib.suppress(Exception):  # the broker may be gone already
        if cluster.granted:
            cluster.revoke(*cluster.granted)
    if not was_running:
        _kafka_local("stop")


@pytest.fixture
def granted(secure_cluster: SecureCluster) -> Iterator[SecureCluster]:
    """The cluster; the ACLs a test grants are removed after it."""
    secure_cluster.granted = []
    yield secure_cluster
    if secure_cluster.granted:
        with contextlib.suppress(Exception):
            secure_cluster.revoke(*secure_cluster.granted)
    secure_cluster.granted = []
