"""A service and the operator commands on a secured cluster: SASL_SSL, SCRAM, ACLs.

The app user starts with no permission at all; each test grants what it needs as the
admin super user, so a missing ACL is the test's own choice.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation

from streamkit import envelope as env
from tests.integration.cli_helpers import json_of, one_error_line, run_cli
from tests.integration.helpers import (
    ROOT,
    STREAMKIT,
    Service,
    committed,
    end_offsets,
    http_status,
    produce_events,
    read_all,
    read_lines,
    wait_until,
)
from tests.integration.secure.conftest import SecureCluster, acl

pytestmark = pytest.mark.kafka
MODULE = "tests.integration.services.fixable"  # fails while $STREAMKIT_TEST_BROKEN exists
READ, WRITE, CREATE = AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE
# Not used with SCRAM; here to prove the `starting` log line hides it.
OAUTH_CONFIG = {"STREAMKIT_KAFKA": '{"sasl.oauthbearer.config": "principal=app tok3n-in-config"}'}


def _names(c: SecureCluster, unique: str) -> tuple[str, str, str, str]:
    source, group = c.topic(f"sec-{unique}"), f"secg-{unique}"
    return source, group, f"{source}.{group}.retry.1", f"{source}.{group}.dlq"


def _events(n: int, start: int = 0) -> list[tuple[str, object, str]]:
    return [("fixable.event", {"id": i}, f"k{i}") for i in range(start, start + n)]


def _run_to_failure(env_vars: dict[str, str], *args: str) -> tuple[int, list[str], float]:
    """`streamkit run` that must fail at start-up: (exit code, stderr lines, seconds)."""
    t0 = time.monotonic()
    done = subprocess.run(
        [STREAMKIT, "run", MODULE, "--metrics-port", "0", *args],
        cwd=ROOT,
        env={**_base_env(), **env_vars},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # The "connecting" log line comes first by design (issue 12.8); the failure is one line.
    lines = [ln for ln in done.stderr.splitlines() if ln.strip() and '"connecting"' not in ln]
    return done.returncode, lines, time.monotonic() - t0


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMKIT_")}


def _readme_scram_variables() -> set[str]:
    """The variables the README's SASL_SSL/SCRAM snippet exports."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("SASL_SSL with SCRAM") :]
    block = section[section.index("```bash") : section.index("```\n", section.index("```bash") + 7)]
    return set(re.findall(r"export (STREAMKIT_[A-Z_]+)=", block))


def _all_of(settings: dict[str, str], topic: str, n: int) -> list[object] | None:
    got = read_all(settings, topic, n, timeout=5)
    return got if len(got) >= n else None


@pytest.mark.timeout(180)
def test_service_with_retry_tier_and_dlq_end_to_end_over_sasl_ssl(
    granted: SecureCluster, unique: str, tmp_path: Path
) -> None:
    # The README's SCRAM snippet: named settings, the password from a file.
    c = granted
    source, group, tier, dlq = _names(c, unique)
    c.grant(
        *(acl("topic", source, op, prefixed=True) for op in (READ, WRITE, CREATE)),
        acl("group", group, READ),
        acl("group", "streamkit-replay.", READ, prefixed=True),
    )
    e = c.env()
    assert set(e) == _readme_scram_variables()  # the README's snippet is what runs here
    ensured = run_cli("topics", "ensure", MODULE, "-t", source, "-g", group, env_vars=e)
    assert ensured.exit_code == 0, ensured.stderr
    assert f"created  {dlq}" in ensured.stdout
    events = tmp_path / "events.jsonl"
    events.write_text("".join(f'{{"data": {{"id": {i}}}, "key": "k{i}"}}\n' for i in range(40)))
    produced = run_cli("produce", source, "-e", "fixable.event", "-f", str(events), env_vars=e)
    assert produced.exit_code == 0, produced.stderr

    broken, out = tmp_path / "broken", tmp_path / "handled.txt"
    broken.touch()
    service = Service(MODULE, bootstrap=c.bootstrap, group=group, topics=[source], out=out,
                      env={**e, "STREAMKIT_TEST_BROKEN": str(broken), **OAUTH_CONFIG})  # fmt: skip
    service.wait_ready()
    wait_until(lambda: _all_of(c.admin_settings, dlq, 40), 60, "40 dead letters")
    listed = json_of(run_cli("dlq", "list", dlq, "--json", env_vars=e))
    assert listed["matched"] == 40

    broken.unlink()  # the fix is deployed
    report = json_of(run_cli("replay", dlq, "--json", env_vars=e))
    assert (report["replayed"], report["failed"], report["targets"]) == (40, 0, {tier: 40})
    wait_until(lambda: len(read_lines(out)) >= 40, 60, "40 handled from the retry tier")
    assert sorted(int(line[0]) for line in read_lines(out)) == list(range(40))
    assert {line[1] for line in read_lines(out)} == {tier}

    def caught_up() -> bool:
        lag = run_cli("lag", "-g", group, "-t", source, "--max-lag", "0", env_vars=e)
        return lag.exit_code == 0

    wait_until(caught_up, 30, "lag 0 on the source", every=0.5)
    assert service.stop() == 0
    log = service.log.read_text()
    starting = next(line for line in log.splitlines() if '"starting"' in line)
    assert '"sasl.password": "***"' in starting and '"sasl.oauthbearer.config": "***"' in starting
    assert c.app["sasl.password"] not in log and "tok3n-in-config" not in log


@pytest.mark.timeout(60)
def test_topics_ensure_and_replay_name_the_missing_acl(granted: SecureCluster, unique: str) -> None:
    c = granted
    source, group, tier, dlq = _names(c, unique)
    c.grant(acl("topic", source, READ))
    ensured = run_cli("topics", "ensure", MODULE, "-t", source, "-g", group, env_vars=c.env())
    assert ensured.exit_code == 2
    assert one_error_line(ensured).endswith(
        f"TOPIC_AUTHORIZATION_FAILED on {tier}: Create "
        f"(add ACL: --allow-principal User:app --operation Create --topic {tier})"
    )
    c.topic(dlq)
    replayed = run_cli("replay", dlq, "--json", env_vars=c.env())
    assert replayed.exit_code == 2
    line = one_error_line(replayed)
    assert f"TOPIC_AUTHORIZATION_FAILED on {dlq}: Read" in line
    assert f"GROUP_AUTHORIZATION_FAILED on streamkit-replay.{dlq}: Read" in line


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"STREAMKIT_SASL_PASSWORD": "wrong-password"}, "authentication failed"),
        ({"STREAMKIT_SSL_CA_LOCATION": "OTHER_CA"}, "TLS handshake failed"),
    ],
    ids=["wrong-password", "ca-does-not-match"],
)
def test_refused_connection_fails_in_seconds_with_one_line(
    granted: SecureCluster, unique: str, override: dict[str, str], expected: str
) -> None:
    e = granted.env(**{k: v.replace("OTHER_CA", granted.other_ca) for k, v in override.items()})
    if "STREAMKIT_SASL_PASSWORD" in override:
        del e["STREAMKIT_SASL_PASSWORD_FILE"]
    code, lines, seconds = _run_to_failure(e, "-t", f"sec-{unique}", "-g", f"g-{unique}")
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"streamkit: error: {expected}: "), lines[0]
    assert "wrong-password" not in lines[0]
    assert seconds < 10  # not the 30 s connect timeout


CASES = {
    "read-source": ("topic", "SOURCE", READ),
    "write-dlq": ("topic", "DLQ", WRITE),
    "write-publish-target": ("topic", "TARGET", WRITE),
    "read-group": ("group", "GROUP", READ),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", list(CASES))
def test_each_missing_acl_is_named_at_start_up(
    granted: SecureCluster, unique: str, case: str
) -> None:
    c = granted
    source, group, tier, dlq = _names(c, unique)
    target = c.topic(f"sec-target-{unique}", 1)
    for name in (tier, dlq):
        c.topic(name)
    names = {"SOURCE": source, "DLQ": dlq, "TARGET": target, "GROUP": group}
    needed = [
        ("topic", source, READ),
        ("topic", tier, READ),
        ("topic", tier, WRITE),
        ("topic", dlq, WRITE),
        ("topic", target, WRITE),
        ("group", group, READ),
    ]
    kind, placeholder, op = CASES[case]
    denied = (kind, names[placeholder], op)
    c.grant(*(acl(k, n, o) for k, n, o in needed if (k, n, o) != denied))
    e = c.env(STREAMKIT_PUBLISH_TOPICS=f'{{"invoice.requested": "{target}"}}')
    code, lines, _ = _run_to_failure(e, "-t", source, "-g", group)
    assert code == 2
    assert len(lines) == 1, lines
    verb = op.name.capitalize()
    error = "TOPIC" if kind == "topic" else "GROUP"
    assert lines[0] == (
        f"streamkit: error: User:app lacks permissions: {error}_AUTHORIZATION_FAILED on "
        f"{denied[1]}: {verb} (add ACL: --allow-principal User:app --operation {verb} "
        f"--{kind} {denied[1]})"
    )


@pytest.mark.timeout(150)
def test_dlq_write_revoked_mid_run_holds_offsets_and_recovers_when_restored(
    granted: SecureCluster, unique: str, tmp_path: Path
) -> None:
    # Contract: while the DLQ refuses our writes, no offset moves past a record that
    # failed; when the ACL is back, every failed record lands in the DLQ and the
    # offsets reach the end -- nothing lost, no restart needed.
    c = granted
    source, group, tier, dlq = _names(c, unique)
    for name in (tier, dlq):
        c.topic(name)
    dlq_write = acl("topic", dlq, WRITE)
    c.grant(acl("topic", source, READ, prefixed=True), acl("topic", tier, WRITE),
            acl("group", group, READ), dlq_write)  # fmt: skip
    broken, out = tmp_path / "broken", tmp_path / "handled.txt"
    service = Service(MODULE, bootstrap=c.bootstrap, group=group, topics=[source], out=out,
                      env={**c.env(), "STREAMKIT_TEST_BROKEN": str(broken),
                           "STREAMKIT_COMMIT_INTERVAL": "0.2",
                           "STREAMKIT_STALL_AFTER": "2"})  # fmt: skip
    service.wait_ready()
    produce_events(c.admin_settings, source, _events(6))
    wait_until(lambda: len(read_lines(out)) == 6, 60, "6 healthy events handled")
    before = end_offsets(c.admin_settings, source, 3)
    wait_until(lambda: committed(c.admin_settings, group, source, 3) == before, 30, "commits")

    c.revoke(dlq_write)
    broken.touch()
    produce_events(c.admin_settings, source, _events(6, start=100))
    ends = end_offsets(c.admin_settings, source, 3)

    def refusals() -> int:
        return service.log.read_text().count("retry/DLQ publish failed")

    wait_until(lambda: refusals() >= 12, 60, "each DLQ write refused twice")  # 6 records
    assert committed(c.admin_settings, group, source, 3) == before  # held below the failures
    # A partition that cannot move fails the liveness probe (after stall_after).
    wait_until(lambda: http_status(service.port, "/healthz") == 503, 30, "/healthz failing")

    c.grant(dlq_write)
    dead = wait_until(lambda: _all_of(c.admin_settings, dlq, 6), 60, "6 records in the DLQ")
    wait_until(lambda: committed(c.admin_settings, group, source, 3) == ends, 60, "commits")
    originals = {
        (env.header_int(m.headers(), env.H_ORIGINAL_PARTITION),
         env.header_int(m.headers(), env.H_ORIGINAL_OFFSET))
        for m in dead
    }  # fmt: skip
    failed = {(p, o) for p in range(3) for o in range(before[p], ends[p])}
    assert len(dead) == 6 and originals == failed  # each failed record once, none lost
    assert len(read_lines(out)) == 6  # the failed ones were never "handled"
    assert http_status(service.port, "/healthz") == 200  # recovered with the ACL
    assert service.stop() == 0
