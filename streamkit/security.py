"""Named security settings (``STREAMKIT_SECURITY_PROTOCOL``, ``STREAMKIT_SASL_*``, ...).

They read like the connection docs of managed Kafka and map one to one onto librdkafka
properties, applied alike to the consumer, the producer and the admin client. Each
secret can also come from a file (``STREAMKIT_SASL_PASSWORD_FILE=/run/secrets/kafka``),
the convention of Docker and Kubernetes secrets; a ``-X``/``STREAMKIT_KAFKA`` property of
the same librdkafka name wins over a named setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, SecretStr, field_validator, model_validator

# Named setting -> librdkafka property.
PROPERTIES = {
    "security_protocol": "security.protocol",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_username": "sasl.username",
    "sasl_password": "sasl.password",
    "ssl_ca_location": "ssl.ca.location",
    "ssl_certificate_location": "ssl.certificate.location",
    "ssl_key_location": "ssl.key.location",
    "ssl_key_password": "ssl.key.password",
    "ssl_keystore_location": "ssl.keystore.location",
    "ssl_keystore_password": "ssl.keystore.password",
    "sasl_oauthbearer_method": "sasl.oauthbearer.method",
    "sasl_oauthbearer_client_id": "sasl.oauthbearer.client.id",
    "sasl_oauthbearer_client_secret": "sasl.oauthbearer.client.secret",
    "sasl_oauthbearer_token_endpoint_url": "sasl.oauthbearer.token.endpoint.url",
    "sasl_oauthbearer_scope": "sasl.oauthbearer.scope",
    "sasl_oauthbearer_extensions": "sasl.oauthbearer.extensions",
}
SECRET_FIELDS = (
    "sasl_password",
    "ssl_key_password",
    "ssl_keystore_password",
    "sasl_oauthbearer_client_secret",
)


def _read_secret(path: Path) -> str:
    try:
        return path.read_text().rstrip("\r\n")  # secret files often end with a newline
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None


class SecuritySettings(BaseModel):
    """TLS and SASL settings; every field is also ``STREAMKIT_<NAME>`` in the environment."""

    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None
    ) = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None  # mTLS: the client certificate (PEM)
    ssl_key_location: str | None = None  # mTLS: its private key (PEM)
    ssl_key_password: SecretStr | None = None
    ssl_key_password_file: Path | None = None
    ssl_keystore_location: str | None = None  # mTLS from a PKCS#12 keystore instead
    ssl_keystore_password: SecretStr | None = None
    ssl_keystore_password_file: Path | None = None
    sasl_oauthbearer_method: Literal["default", "oidc"] | None = None
    sasl_oauthbearer_client_id: str | None = None
    sasl_oauthbearer_client_secret: SecretStr | None = None
    sasl_oauthbearer_client_secret_file: Path | None = None
    sasl_oauthbearer_token_endpoint_url: str | None = None
    sasl_oauthbearer_scope: str | None = None
    sasl_oauthbearer_extensions: str | None = None

    @field_validator(*(f"{name}_file" for name in SECRET_FIELDS))
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None:
            _read_secret(path)  # fail at start-up, not at the first connection
        return path

    @model_validator(mode="after")
    def _one_source_per_secret(self) -> SecuritySettings:
        for name in SECRET_FIELDS:
            if getattr(self, name) is not None and getattr(self, f"{name}_file") is not None:
                env = f"STREAMKIT_{name.upper()}"
                raise ValueError(f"set {env} or {env}_FILE, not both")
        return self

    def security_properties(self) -> dict[str, Any]:
        """The librdkafka properties of the named settings that are set."""
        props: dict[str, Any] = {}
        for name, prop in PROPERTIES.items():
            value = getattr(self, name)
            if name in SECRET_FIELDS:
                value = self._secret(name)
            if value is not None:
                props[prop] = value
        return props

    def _secret(self, name: str) -> str | None:
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return value.get_secret_value()
        path: Path | None = getattr(self, f"{name}_file")
        # Read at each client creation: a rotated secret file is picked up on restart.
        return None if path is None else _read_secret(path)
