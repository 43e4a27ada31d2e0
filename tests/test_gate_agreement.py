"""Gates sharing a store detect another gate that signs with other keys or secrets, and say so
loudly without exposing them: through real ``saml-gate run`` processes on one Redis, through
``saml-gate check``, and between gates in this process for the cases of a key rotation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from saml_gate import SamlGate
from saml_gate.ops.agreement import RECORDS, Comparison
from tests.conftest import TEST_REDIS_URL
from tests.test_cli import Server, cli_env, config, free_port, keys, saml_gate

__all__ = ["config", "keys"]  # fixtures: an IdP's metadata file and keys

pytestmark = pytest.mark.anyio

APP = ("examples.fastapi_app.main:build_app", "--factory")


def keygen(folder: Path) -> dict[str, str]:
    """``saml-gate keygen``'s folder, as the variables it prints."""
    made = saml_gate("keygen", "--out-dir", str(folder))
    assert made.returncode == 0, made.stderr
    return {
        "SAML_GATE_SP_KEY": str(folder / "sp.key.pem"),
        "SAML_GATE_SP_CERT": str(folder / "sp.cert.pem"),
        "SAML_GATE_JWT_KEYS": str(folder / "jwt.key.pem"),
        "SAML_GATE_SECRET_KEY_FILE": str(folder / "secret_key"),
    }


def host_env(base: dict[str, str], tmp_path: Path, name: str, **values: str) -> dict[str, str]:
    """One host's environment: the IdP and the shared store, its own state_dir."""
    return cli_env(
        SAML_GATE_IDP_METADATA=base["SAML_GATE_IDP_METADATA"],
        SAML_GATE_STATE_DIR=str(tmp_path / name / "state"),
        SAML_GATE_STORE=TEST_REDIS_URL,
        SAML_GATE_STORE_PREFIX=base["SAML_GATE_STORE_PREFIX"],
        **values,
    )


def until_warned(server: Server) -> dict[str, Any]:
    """``/saml/status`` once the gate has compared itself with the others (it does so in the
    background after it starts serving)."""
    deadline = time.monotonic() + 30
    while True:
        status: dict[str, Any] = server.get("/saml/status").json()
        if any("shares this store" in w for w in status["warnings"]) or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


async def test_a_gate_with_other_keys_says_so_and_check_names_it(
    tmp_path: Path, config: dict[str, str], redis_prefix: str
) -> None:
    shared = keygen(tmp_path / "shared")
    base = {**config, "SAML_GATE_STORE_PREFIX": redis_prefix}
    # Host one: the keys made once. Host two: the folder was not copied, so the gate makes its
    # own SP key pair and JWT key, and someone exported another secret.
    good = host_env(base, tmp_path, "one", **shared)
    stray_secret = "another-secret-that-nobody-copied-" + "x" * 10
    stray = host_env(base, tmp_path, "two", SAML_GATE_SECRET_KEY=stray_secret)
    port_one, port_two = free_port(), free_port()
    one = Server("run", *APP, "--base-url", "https://app.example", env=good, port=port_one)
    try:
        two = Server("run", *APP, "--base-url", "https://app.example", env=stray, port=port_two)
        try:
            status = until_warned(two)
        finally:
            log_two = two.stop()
        # A third host, set up like the first, runs saml-gate check before it starts.
        check = saml_gate("check", "--base-url", "https://app.example", env=good)
    finally:
        log_one = one.stop()

    (line,) = [x for x in log_two.splitlines() if "shares this store but not these values" in x]
    assert "secret_key (neither accepts what the other signs" in line
    assert "the SP key pair (sp_key, sp_cert" in line and "jwt_keys (it signs" in line
    assert "Production checklist" in line
    assert any("shares this store but not these values" in w for w in status["warnings"])
    assert "shares this store" not in log_one  # it compared before the second gate started

    assert check.returncode == 1, check.stdout
    fails = [x for x in check.stdout.splitlines() if x.startswith("  FAIL")]
    assert len(fails) == 1 and "secret_key" in fails[0] and "SP key pair" in fails[0], fails
    assert "1 other gate(s) serving from it share" in check.stdout  # the first host agrees

    secret = Path(shared["SAML_GATE_SECRET_KEY_FILE"]).read_text().strip()
    for text in (log_one, log_two, check.stdout, json.dumps(status)):
        assert secret not in text and stray_secret not in text
        assert "PRIVATE KEY" not in text


async def test_gates_with_the_same_values_agree(
    tmp_path: Path, config: dict[str, str], redis_prefix: str
) -> None:
    shared = keygen(tmp_path / "shared")
    base = {**config, "SAML_GATE_STORE_PREFIX": redis_prefix}
    servers = []
    try:
        for name in ("one", "two"):
            env = host_env(base, tmp_path, name, **shared)
            port = free_port()
            servers.append(Server("run", *APP, "--base-url", "https://app.example", env=env,
                                  port=port))  # fmt: skip
        check = saml_gate(
            "check",
            "--base-url",
            "https://app.example",
            env=host_env(base, tmp_path, "3", **shared),
        )
    finally:
        logs = [server.stop() for server in servers]
    assert check.returncode == 0, check.stdout
    assert "2 other gate(s) serving from it share" in check.stdout
    assert not any("shares this store" in log for log in logs), logs


# ------------------------------------------------------------------ in one process
def kid(path: str) -> str:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from saml_gate.identity.keys import jwt_key

    return jwt_key(load_pem_private_key(Path(path).read_bytes(), password=None), path).kid


SECRET_OLD, SECRET_NEW = "o" * 40, "n" * 40


_BUILT: list[SamlGate] = []


@pytest.fixture(autouse=True)
async def _close_gates() -> AsyncIterator[None]:
    yield
    while _BUILT:
        await _BUILT.pop().stop()


async def gate(config: dict[str, str], redis_prefix: str, **options: Any) -> SamlGate:
    """A gate on the test Redis, loaded (its keys and IdP known: what it compares)."""
    settings: dict[str, Any] = {
        "idp_metadata": config["SAML_GATE_IDP_METADATA"],
        "base_url": "https://app.example",
        "sp_key": config["SAML_GATE_SP_KEY"],
        "sp_cert": config["SAML_GATE_SP_CERT"],
        "state_dir": config["SAML_GATE_STATE_DIR"],
        "store": TEST_REDIS_URL,
        "store_prefix": redis_prefix,
        "secret_key": SECRET_OLD,
        "verify_isolation": "thread",
    }
    built = SamlGate(lambda *a: None, **(settings | options))  # type: ignore[arg-type]
    _BUILT.append(built)
    await built.load()
    return built


async def compared(first: SamlGate, second: SamlGate) -> list[Comparison]:
    """The second gate's view, after the first announced itself."""
    await first.core.agreement.compare(announce=True)
    return await second.core.agreement.compare(announce=True)


async def test_a_secret_rotation_in_progress_is_no_disagreement(
    config: dict[str, str], redis_prefix: str
) -> None:
    """The README's rotation: the new secret is added (second) everywhere, then moved first.
    Each stage on a store prefix of its own (as if the earlier gates had stopped)."""

    async def stage(name: str, secret_key: list[str]) -> SamlGate:
        return await gate(config, f"{redis_prefix}{name}:", secret_key=secret_key)

    old, both = await stage("a", [SECRET_OLD]), await stage("a", [SECRET_OLD, SECRET_NEW])
    assert [item.values for item in await compared(old, both)] == [()]
    both, signs_new = (
        await stage("b", [SECRET_OLD, SECRET_NEW]),
        await stage("b", [SECRET_NEW, SECRET_OLD]),
    )
    assert [item.values for item in await compared(both, signs_new)] == [()]

    # Skipping the first step: a gate signs with a secret the other does not accept yet.
    old, signs_new = await stage("c", [SECRET_OLD]), await stage("c", [SECRET_NEW, SECRET_OLD])
    (seen_by_new,) = await compared(old, signs_new)
    (seen_by_old,) = await old.core.agreement.compare(announce=False)
    assert seen_by_new.values[0].startswith(
        "secret_key (this gate signs with a secret it does not accept:"
    )
    assert seen_by_old.values[0].startswith(
        "secret_key (it signs with a secret this gate does not accept:"
    )
    old, only_new = await stage("d", [SECRET_OLD]), await stage("d", [SECRET_NEW])
    (item,) = await compared(old, only_new)
    assert item.values == (
        "secret_key (neither accepts what the other signs: a person signed in, or a sign-in"
        " started, on one gate is refused by the other)",
    )


async def test_jwt_key_rotation_and_other_settings(
    tmp_path: Path, config: dict[str, str], redis_prefix: str
) -> None:
    one, two = keygen(tmp_path / "one"), keygen(tmp_path / "two")
    key_a, key_b = one["SAML_GATE_JWT_KEYS"], two["SAML_GATE_JWT_KEYS"]
    first = await gate(config, redis_prefix, jwt_keys=[key_a, key_b])
    rotated = await gate(config, redis_prefix, jwt_keys=[key_b, key_a])  # both published: fine
    (item,) = await compared(first, rotated)
    assert item.values == ()
    other = await gate(
        config,
        redis_prefix,
        jwt_keys=[key_b],
        base_url="https://other.example",
        access_rules=["/admin/ groups=admins"],
    )
    views = {
        v.other.jwt_signs: "; ".join(v.values)
        for v in await other.core.agreement.compare(announce=False)
    }
    # The first signs with key A, which this JWKS lacks; the rotated one signs with B: fine.
    assert "jwt_keys (it signs identity JWTs with kid" in views[kid(key_a)]
    assert "jwt_keys" not in views[kid(key_b)]
    for text in views.values():
        assert "base_url (https://app.example there, https://other.example here)" in text
        assert "entity_id (" in text and "the access policy or session lifetimes" in text
        assert "secret_key" not in text and "SP key pair" not in text


async def test_records_hold_no_secret_and_expire(config: dict[str, str], redis_prefix: str) -> None:
    import redis.asyncio

    first = await gate(config, redis_prefix)
    await first.core.agreement.compare(announce=True)
    client = redis.asyncio.Redis.from_url(TEST_REDIS_URL)
    try:
        key = redis_prefix + RECORDS
        entries = await client.zrange(key, 0, -1, withscores=True)
        ttl = await client.pttl(key)
    finally:
        await client.aclose()
    ((member, expires),) = entries
    text = member.decode()
    assert SECRET_OLD not in text and "PRIVATE" not in text
    record = json.loads(text)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", record["secret_signs"])
    assert 0 < ttl <= 90_000 and expires > 0


async def test_a_reloaded_policy_is_the_one_compared(
    tmp_path: Path, config: dict[str, str], redis_prefix: str
) -> None:
    """Gates compare the access policy in force: after a reload of one gate's configuration
    file, the other (whose file did not change) is found to differ, until it reloads too."""
    files = [tmp_path / "a.toml", tmp_path / "b.toml"]
    for file in files:
        file.write_text('public_paths = ["/static/"]\n')
    first, second = [await gate(config, redis_prefix, config_file=str(f)) for f in files]
    assert [item.values for item in await compared(first, second)] == [()]
    reloads = [built.core.policy_reload for built in (first, second)]
    assert reloads[0] is not None and reloads[1] is not None
    files[0].write_text('public_paths = ["/static/", "/open/"]\n')
    assert reloads[0].reload().applied
    (item,) = await compared(first, second)
    assert any("the access policy or session lifetimes" in value for value in item.values)
    files[1].write_text('public_paths = ["/static/", "/open/"]\n')
    assert reloads[1].reload().applied
    assert [item.values for item in await compared(first, second)] == [()]
