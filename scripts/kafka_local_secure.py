"""The secured mode of scripts/kafka-local: TLS material, SCRAM users, ACLs, client files.

`scripts/kafka-local start --secure` runs a second broker beside the plaintext one with:

- a SASL_SSL listener (SCRAM-SHA-512) and an SSL listener that requires a client
  certificate (mTLS), both on 127.0.0.1, with a throwaway CA and broker certificate made
  by the JDK's keytool (no Python dependency) and cached in the state dir, since keytool
  is one JVM start per step;
- SCRAM users `admin` (super user) and `app` (no ACLs: tests grant what they need), with
  passwords made fresh on every start and written to the client properties files;
- StandardAuthorizer with allow.everyone.if.no.acl.found=false.

The controller listener stays PLAINTEXT on 127.0.0.1 for the broker's own registration
(KRaft cannot use SCRAM there), so its anonymous principal is a super user; clients use
the advertised SASL_SSL or SSL listener.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

USERS = ("admin", "app")
MECHANISM = "SCRAM-SHA-512"
MTLS_USER = "app-mtls"  # the principal of the mTLS client certificate (User:app-mtls)
TLS_VERSION = "1"  # bump to regenerate cached certificates after a change below
VALIDITY_DAYS = "3650"


class TlsFiles:
    """Where the cached TLS material of one state dir lives."""

    def __init__(self, home: Path) -> None:
        self.dir = home / "tls"
        self.stamp = self.dir / ".version"
        self.store_password = self.dir / "store-password"
        self.ca_p12 = self.dir / "ca.p12"
        self.ca_pem = self.dir / "ca.pem"
        self.broker_p12 = self.dir / "broker.p12"
        self.truststore = self.dir / "truststore.p12"
        self.client_p12 = self.dir / "client.p12"  # mTLS client (CN=app-mtls)
        self.other_ca_pem = self.dir / "other-ca.pem"  # signs nothing here: a wrong CA

    def password(self) -> str:
        return self.store_password.read_text().strip()


def _keytool(keytool: str, *args: str) -> None:
    done = subprocess.run(
        [keytool, *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"keytool {args[0]} failed: {(done.stderr or done.stdout).strip()}")


def _new_key(keytool: str, store: Path, pw: str, alias: str, dname: str, *ext: str) -> None:
    _keytool(
        keytool, "-genkeypair", "-keystore", str(store), "-storetype", "PKCS12",
        "-storepass", pw, "-alias", alias, "-dname", dname, "-keyalg", "EC",
        "-groupname", "secp256r1", "-validity", VALIDITY_DAYS, *ext,
    )  # fmt: skip


def _signed(keytool: str, t: TlsFiles, pw: str, store: Path, alias: str, *ext: str) -> None:
    """Have the CA sign ``alias`` in ``store``; the store then holds the chain."""
    csr, pem = t.dir / f"{alias}.csr", t.dir / f"{alias}.pem"
    _keytool(keytool, "-certreq", "-keystore", str(store), "-storepass", pw, "-alias", alias,
             "-file", str(csr))  # fmt: skip
    _keytool(keytool, "-gencert", "-keystore", str(t.ca_p12), "-storepass", pw, "-alias", "ca",
             "-infile", str(csr), "-outfile", str(pem), "-rfc", "-validity", VALIDITY_DAYS,
             *ext)  # fmt: skip
    _keytool(keytool, "-importcert", "-keystore", str(store), "-storepass", pw, "-alias", "ca",
             "-file", str(t.ca_pem), "-noprompt")  # fmt: skip
    _keytool(keytool, "-importcert", "-keystore", str(store), "-storepass", pw, "-alias", alias,
             "-file", str(pem), "-noprompt")  # fmt: skip


def ensure_tls(keytool: str, home: Path) -> TlsFiles:
    """CA, broker keystore, truststore, mTLS client keystore and a foreign CA, made once."""
    t = TlsFiles(home)
    if t.stamp.is_file() and t.stamp.read_text().strip() == TLS_VERSION:
        return t
    if t.dir.exists():
        for f in t.dir.iterdir():
            f.unlink()
    t.dir.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_hex(16)
    t.store_password.write_text(pw + "\n")
    ca_ext = ("-ext", "bc:c", "-ext", "KeyUsage=keyCertSign,cRLSign")
    _new_key(keytool, t.ca_p12, pw, "ca", "CN=kafka-local test CA", *ca_ext)
    _keytool(keytool, "-exportcert", "-keystore", str(t.ca_p12), "-storepass", pw,
             "-alias", "ca", "-rfc", "-file", str(t.ca_pem))  # fmt: skip
    _new_key(keytool, t.broker_p12, pw, "broker", "CN=localhost")
    server_ext = ("-ext", "SAN=IP:127.0.0.1,DNS:localhost", "-ext", "EKU=serverAuth,clientAuth")
    _signed(keytool, t, pw, t.broker_p12, "broker", *server_ext)
    _new_key(keytool, t.client_p12, pw, "client", f"CN={MTLS_USER}")
    _signed(keytool, t, pw, t.client_p12, "client", "-ext", "EKU=clientAuth")
    _keytool(keytool, "-importcert", "-keystore", str(t.truststore), "-storetype", "PKCS12",
             "-storepass", pw, "-alias", "ca", "-file", str(t.ca_pem), "-noprompt")  # fmt: skip
    other = t.dir / "other-ca.p12"
    _new_key(keytool, other, pw, "other", "CN=some other CA", *ca_ext)
    _keytool(keytool, "-exportcert", "-keystore", str(other), "-storepass", pw,
             "-alias", "other", "-rfc", "-file", str(t.other_ca_pem))  # fmt: skip
    t.stamp.write_text(TLS_VERSION + "\n")
    return t


def new_passwords() -> dict[str, str]:
    """A fresh password per SCRAM user (the data dir, and so the users, is new each start)."""
    return {user: secrets.token_urlsafe(18) for user in USERS}


def scram_format_args(passwords: dict[str, str]) -> list[str]:
    """`kafka-storage format` arguments that create the SCRAM users in the new metadata."""
    args = []
    for user, password in passwords.items():
        args += ["--add-scram", f"{MECHANISM}=[name={user},password={password}]"]
    return args


def listeners(host: str, port: int, mtls_port: int, controller_port: int) -> str:
    """The listener lines of server.properties in secured mode."""
    return f"""\
listeners=SASL_SSL://{host}:{port},SSL://{host}:{mtls_port},CONTROLLER://{host}:{controller_port}
advertised.listeners=SASL_SSL://{host}:{port},SSL://{host}:{mtls_port}
listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=SASL_SSL
"""


def security_properties(t: TlsFiles, passwords: dict[str, str]) -> str:
    """TLS, SASL and authorizer lines of server.properties in secured mode."""
    pw = t.password()
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="admin" password="{passwords["admin"]}";'
    )
    return f"""
# Secured mode (scripts/kafka_local_secure.py).
sasl.enabled.mechanisms={MECHANISM}
sasl.mechanism.inter.broker.protocol={MECHANISM}
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}
ssl.keystore.type=PKCS12
ssl.keystore.location={t.broker_p12}
ssl.keystore.password={pw}
ssl.key.password={pw}
ssl.truststore.type=PKCS12
ssl.truststore.location={t.truststore}
ssl.truststore.password={pw}
ssl.endpoint.identification.algorithm=https
listener.name.ssl.ssl.client.auth=required
# CN=app-mtls -> User:app-mtls
ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
# ANONYMOUS is only reachable on the PLAINTEXT controller listener (the broker itself).
super.users=User:admin;User:ANONYMOUS
"""


def client_properties(
    t: TlsFiles, host: str, port: int, mtls_port: int, passwords: dict[str, str]
) -> dict[str, str]:
    """librdkafka properties files' text by name: one per SCRAM user, one for mTLS."""
    files = {}
    for user, password in passwords.items():
        files[f"{user}.properties"] = (
            f"bootstrap.servers={host}:{port}\n"
            "security.protocol=SASL_SSL\n"
            f"sasl.mechanism={MECHANISM}\n"
            f"sasl.username={user}\n"
            f"sasl.password={password}\n"
            f"ssl.ca.location={t.ca_pem}\n"
        )
    files["mtls.properties"] = (
        f"bootstrap.servers={host}:{mtls_port}\n"
        "security.protocol=SSL\n"
        f"ssl.ca.location={t.ca_pem}\n"
        f"ssl.keystore.location={t.client_p12}\n"
        f"ssl.keystore.password={t.password()}\n"
    )
    return files
