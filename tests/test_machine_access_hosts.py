"""Machine access across hosts: two gate processes sharing Redis, real sockets, the real command.

Each "host" is its own uvicorn process (tests/test_universal_logout_hosts.py's), configured by
``SAML_GATE_*`` variables, with a token route (``/private/api/ accept=session,token
groups=deployers``) beside browser-only pages, and trusting the test kit's authorization server,
whose key set a loopback server publishes (fetched as a real issuer's). A CI-style client with a
gate token made by ``saml-gate tokens create`` and one with an IdP access token reach the token
route on both hosts and are refused on a browser-only page; ``saml-gate tokens revoke`` on one
side makes every host refuse the gate token, pushed through Redis (a hang guard only stops a
test that would wait forever: how long it takes is not asserted here).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from saml_gate.testing import SamlTestIdp, gate_error_code
from saml_gate.testing.access_tokens import AUDIENCE, CLIENT_ID, ISSUER, KeyServer
from tests.conftest import TEST_REDIS_URL
from tests.test_sessions_cli import store_command
from tests.test_store_outage import free_port
from tests.test_universal_logout_hosts import (
    ClientConnection,
    Host,
    closed_with,
    host_environment,
    opened_with,
    start_host,
)

pytestmark = pytest.mark.anyio

HANG_GUARD = 30.0  # a bound on waiting, not a timing assertion
JSON = {"accept": "application/json"}


def tokens(*args: str, prefix: str, store: str = TEST_REDIS_URL) -> tuple[int, str, str]:
    """``saml-gate tokens ...`` as an operator runs it: (exit status, stdout, stderr)."""
    done = store_command("tokens", *args, store=store, prefix=prefix)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def key_server(saml_idp: SamlTestIdp) -> Iterator[KeyServer]:
    server = KeyServer(saml_idp.access_tokens.jwks)
    yield server
    server.close()


@pytest.fixture
def hosts(
    saml_idp: SamlTestIdp, tmp_path: Path, redis_prefix: str, key_server: KeyServer
) -> Iterator[list[Host]]:
    env = host_environment(saml_idp, "http://app.test", tmp_path) | {
        "SAML_GATE_STORE_PREFIX": redis_prefix,
        "SAML_GATE_ACCESS_RULES": "/private/api/ accept=session,token groups=deployers;"
        " /ws accept=session,token groups=deployers",
        "SAML_GATE_REASSERT_INTERVAL": "60",  # for people: a service is never re-asserted
        "SAML_GATE_ACCESS_TOKEN_ISSUER": ISSUER,
        "SAML_GATE_ACCESS_TOKEN_AUDIENCES": AUDIENCE,
        "SAML_GATE_ACCESS_TOKEN_KEYS": key_server.url,
    }
    started: list[Host] = []
    try:
        for number in (1, 2):
            started.append(start_host(f"host{number}", free_port(), env, tmp_path))
        yield started
    finally:
        for host in started:
            host.stop()


async def opened(host: Host, token: str) -> ClientConnection:
    """A WebSocket a service opens with its token, past its hello and one echo."""
    return await opened_with(host, ("Authorization", f"Bearer {token}"))


async def call(host: Host, path: str, token: str) -> tuple[int, str | None, str | None]:
    """A CI job's request: (status, who the app saw, the gate's error code)."""
    async with host.client() as client:
        r = await client.get(path, headers={**JSON, "authorization": f"Bearer {token}"})
    who = r.json().get("user") if r.status_code == 200 else None
    return r.status_code, who, gate_error_code(r)


async def test_ci_clients_reach_the_api_on_every_host_until_the_gate_token_is_revoked(
    saml_idp: SamlTestIdp, hosts: list[Host], redis_prefix: str, key_server: KeyServer
) -> None:
    code, out, err = tokens(
        "create", "--name", "ci-deploy", "--groups", "deployers", "--expires", "90d",
        prefix=redis_prefix,
    )  # fmt: skip
    assert code == 0, err
    gate_token = out.strip()
    assert gate_token.startswith("sgt_") and "shown only this once" in err
    access_token = saml_idp.access_token(groups=["deployers"])

    for host in hosts:
        assert await call(host, "/private/api/deploy", gate_token) == (200, "ci-deploy", None)
        assert await call(host, "/private/api/deploy", access_token) == (200, CLIENT_ID, None)
        for token in (gate_token, access_token):
            refused = await call(host, "/private/page", token)
            assert refused == (403, None, "token_not_accepted")
    assert key_server.fetches == 2  # each host fetched the issuer's keys once, at start-up

    sockets = [await opened(host, gate_token) for host in hosts]  # a service's WebSockets

    code, listing, _ = tokens("list", prefix=redis_prefix)
    assert code == 0 and "ci-deploy" in listing and "deployers" in listing
    assert listing.rstrip().endswith("1 live token(s)") and gate_token not in listing

    code, said, _ = tokens("revoke", "ci-deploy", prefix=redis_prefix)
    assert code == 0 and "revoked 1 token(s)" in said
    with anyio.fail_after(HANG_GUARD):  # pushed through Redis to each host's revocation view
        for host in hosts:
            while (await call(host, "/private/api/deploy", gate_token))[0] != 401:
                await anyio.sleep(0.01)
    assert [await closed_with(ws) for ws in sockets] == [1008, 1008]
    for host in hosts:
        assert await call(host, "/private/api/x", gate_token) == (401, None, "token_revoked")
        assert await call(host, "/private/api/x", access_token) == (200, CLIENT_ID, None)
    assert tokens("list", prefix=redis_prefix)[1].rstrip().endswith("0 live token(s)")
    assert tokens("revoke", "ci-deploy", prefix=redis_prefix)[0] == 1


async def test_the_memory_store_refuses_tokens(redis_prefix: str) -> None:
    code, _, err = tokens("create", "--name", "ci", store="memory", prefix=redis_prefix)
    assert code == 2 and "memory store" in err and "shared store" in err
    code, _, err = tokens("create", "--name", "no spaces", prefix=redis_prefix)
    assert code == 2 and "token name" in err


def test_saml_gate_check_fetches_the_issuers_keys(
    saml_idp: SamlTestIdp, key_server: KeyServer, tmp_path: Path
) -> None:
    from tests.test_cli import check_env, saml_gate

    env = check_env(
        saml_idp.keys,
        tmp_path,
        SAML_GATE_ACCESS_TOKEN_ISSUER=ISSUER,
        SAML_GATE_ACCESS_TOKEN_AUDIENCES=AUDIENCE,
    )
    base = ("check", "--base-url", "https://acme.ngrok.app", "--access-token-keys")
    reached = saml_gate(*base, key_server.url, env=env)
    assert f"ok    access tokens of {ISSUER} for {AUDIENCE}: 1 signing key(s)" in reached.stdout
    dead = saml_gate(*base, f"http://127.0.0.1:{free_port()}/v1/keys", env=env)
    assert "FAIL  access_token_keys: cannot fetch" in dead.stdout, dead.stdout
