"""mTLS on the secured broker: the principal is the client certificate's, as the README's
mTLS snippet sets it up (PKCS#12 keystore variant)."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from tests.integration.cli_helpers import json_of, run_cli
from tests.integration.secure.conftest import SecureCluster, read_properties

pytestmark = pytest.mark.kafka


def test_a_service_principal_from_its_client_certificate_reads_what_it_is_granted(
    granted: SecureCluster, unique: str
) -> None:
    # Contract: with STREAMKIT_SECURITY_PROTOCOL=SSL and a client certificate, streamkit
    # commands authenticate as the certificate's principal (User:app-mtls): granted
    # Describe and DescribeConfigs on a topic, `topics describe` works; without them, not.
    c = granted
    mtls = read_properties(c.properties.with_name("mtls.properties"))
    topic = c.topic(f"mtls-{unique}", 2)
    env_vars = {
        "STREAMKIT_BOOTSTRAP_SERVERS": mtls["bootstrap.servers"],
        "STREAMKIT_SECURITY_PROTOCOL": "SSL",
        "STREAMKIT_SSL_CA_LOCATION": mtls["ssl.ca.location"],
        "STREAMKIT_SSL_KEYSTORE_LOCATION": mtls["ssl.keystore.location"],
        "STREAMKIT_SSL_KEYSTORE_PASSWORD": mtls["ssl.keystore.password"],
    }
    denied = run_cli("topics", "describe", topic, "--json", env_vars=env_vars)
    assert denied.exit_code != 0
    bindings: list[Any] = [
        AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:app-mtls", "*",
                   op, AclPermissionType.ALLOW)
        for op in (AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS)
    ]  # fmt: skip
    c.grant(*bindings)
    described = json_of(run_cli("topics", "describe", topic, "--json", env_vars=env_vars))
    assert described["topic"] == topic and len(described["partitions"]) == 2
