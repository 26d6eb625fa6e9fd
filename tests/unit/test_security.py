"""Named security settings, the one redaction, and the preflight's permission logic."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from confluent_kafka.admin import AclOperation
from pydantic import ValidationError

from streamkit.cli.main import cli
from streamkit.config import Settings, redact
from streamkit.preflight import READ, WRITE, _missing, advice

# Every librdkafka property (CONFIGURATION.md) that carries a secret, plus the Java
# client's sasl.jaas.config that people paste into -X.
SECRET_PROPERTIES = [
    "sasl.password",
    "sasl.oauthbearer.client.secret",
    "sasl.oauthbearer.client.credentials.client.secret",
    "sasl.oauthbearer.config",
    "sasl.oauthbearer.extensions",
    "sasl.oauthbearer.assertion.private.key.passphrase",
    "sasl.oauthbearer.assertion.private.key.pem",
    "ssl.key.password",
    "ssl.key.pem",
    "ssl_key",
    "ssl.keystore.password",
    "ssl_engine_callback_data",
    "sasl.jaas.config",
]
PUBLIC_PROPERTIES = {
    "bootstrap.servers": "b:9093",
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "svc",
    "ssl.ca.location": "/etc/ca.pem",
    "ssl.certificate.location": "/etc/cert.pem",
    "ssl.certificate.pem": "-----BEGIN CERTIFICATE-----",
    "group.id": "billing",
}


@pytest.mark.parametrize("name", SECRET_PROPERTIES)
def test_redact_hides_every_secret_property(name: str) -> None:
    conf = {name: "s3cret-value", **PUBLIC_PROPERTIES, "error_cb": print}
    safe = redact(conf)
    assert safe[name] == "***"
    assert {k: v for k, v in safe.items() if k != name} == PUBLIC_PROPERTIES  # no callables
    assert redact(conf, f"client said: bad {name}=s3cret-value") == f"client said: bad {name}=***"


def test_redact_hides_secrets_of_named_settings_too(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    s = Settings(sasl_password_file=secret, ssl_key_password="pem-pass")
    consumer = s.consumer_settings("g")
    assert consumer["sasl.password"] == "from-a-file"  # the trailing newline is not part of it
    assert redact(consumer)["sasl.password"] == redact(consumer)["ssl.key.password"] == "***"
    assert "from-a-file" not in repr(s) and "pem-pass" not in repr(s)


def test_named_settings_reach_every_client_and_passthrough_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("STREAMKIT_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("STREAMKIT_SASL_USERNAME", "svc")
    monkeypatch.setenv("STREAMKIT_SASL_PASSWORD", "pw")
    monkeypatch.setenv("STREAMKIT_SSL_CA_LOCATION", "/ca.pem")
    monkeypatch.setenv("STREAMKIT_KAFKA", '{"sasl.username": "override"}')
    s = Settings()
    expected = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "override",
        "sasl.password": "pw",
        "ssl.ca.location": "/ca.pem",
    }
    for conf in (s.client_settings(), s.producer_settings(), s.consumer_settings("g")):
        assert expected.items() <= conf.items()


def test_secret_from_env_and_file_at_once_or_unreadable_is_a_clear_error(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("x")
    with pytest.raises(ValidationError, match="STREAMKIT_SASL_PASSWORD or STREAMKIT_SASL_PASS"):
        Settings(sasl_password="y", sasl_password_file=secret)
    with pytest.raises(ValidationError, match="cannot read"):
        Settings(sasl_password_file=tmp_path / "missing")
    with pytest.raises(ValidationError, match="security_protocol"):
        Settings(security_protocol="TLS")  # type: ignore[arg-type]


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env)
    return result.exit_code, result.stderr


def test_malformed_passthrough_never_echoes_a_secret() -> None:
    # A comma inside a password splits it: the fragments must not reach the error.
    code, err = _run(
        ["run", "some.module", "-g", "g"], {"STREAMKIT_KAFKA": "sasl.password=ab1,cd2ef"}
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("streamkit: error: invalid settings: kafka")
    assert "ab1" not in err and "cd2ef" not in err
    code, err = _run(["run", "some.module", "-X", "=topsecret"], {})
    assert code == 2 and "topsecret" not in err
    code, err = _run(["run", "some.module"], {"STREAMKIT_KAFKA": '{"sasl.password": "tops3cret"'})
    assert code == 2 and "tops3cret" not in err and "not valid JSON" in err


def test_missing_operations() -> None:
    assert _missing({READ, WRITE}, None) == []  # the broker did not say (no authorizer)
    assert _missing({READ, WRITE}, [AclOperation.ALL]) == []
    assert _missing({READ, WRITE}, [AclOperation.READ, AclOperation.DESCRIBE]) == [WRITE]
    assert _missing({AclOperation.DESCRIBE}, [AclOperation.WRITE]) == []  # Write implies it
    assert _missing({READ}, []) == [READ]
    assert advice("topic", "t.dlq", WRITE, "User:svc") == (
        "TOPIC_AUTHORIZATION_FAILED on t.dlq: Write "
        "(add ACL: --allow-principal User:svc --operation Write --topic t.dlq)"
    )
