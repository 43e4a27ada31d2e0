"""``saml-gate sessions list | revoke`` against the Redis two uvicorn worker processes share.

The command runs as a subprocess, as an operator runs it; the revocation it writes is published
to every gate process (the workers refuse the session without a restart). With the memory store
it says it cannot (exit 2).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from saml_gate.saml.keys import KeyPair
from tests.conftest import TEST_REDIS_URL
from tests.test_multiworker import Browser, Workers, gate_env, workers
from tests.test_sessions import fields_of

pytestmark = pytest.mark.anyio
__all__ = ["gate_env", "workers"]  # the fixtures this module uses


def session_id_of(cookie: str) -> str:
    """The session ID a cookie carries (read without its signature: the test's own cookie)."""
    return str(fields_of(cookie)[10])


def store_command(
    command: str, *args: str, store: str = TEST_REDIS_URL, prefix: str = ""
) -> subprocess.CompletedProcess[str]:
    """``saml-gate COMMAND ...`` as an operator runs it against the shared store."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAML_GATE_")}
    env["SAML_GATE_STORE"] = store
    if prefix:
        env["SAML_GATE_STORE_PREFIX"] = prefix
    return subprocess.run(
        [sys.executable, "-m", "saml_gate.cli", command, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def sessions(*args: str, store: str = TEST_REDIS_URL, prefix: str = "") -> tuple[int, str]:
    done = store_command("sessions", *args, store=store, prefix=prefix)
    return done.returncode, done.stdout + done.stderr


async def test_list_then_revoke_by_user_and_by_session(
    workers: Workers, idp_keys: KeyPair, redis_prefix: str
) -> None:
    browser = Browser(workers, idp_keys)
    await browser.login("okta-1")
    first = browser.cookies["saml_gate_session"]
    await browser.login("okta-2")
    second = browser.cookies["saml_gate_session"]

    code, listing = sessions("list", "--user", "alice@example.com", prefix=redis_prefix)
    assert code == 0 and "2 live session(s)" in listing and "alice@example.com" in listing
    assert sessions("list", "--user", "bob@example.com", prefix=redis_prefix)[1].endswith(
        "0 live session(s)\n"
    )
    session_ids = [line.split()[0] for line in listing.splitlines()[1:-1]]
    assert len(session_ids) == 2

    # One session by its ID: the others stay.
    assert session_id_of(first) in session_ids
    code, out = sessions("revoke", "--session", session_id_of(first), prefix=redis_prefix)
    assert code == 0 and "revoked 1 session(s)" in out
    await browser.refused_on_each_worker(first)
    assert await browser.status_on_each_worker(second) == dict.fromkeys(workers.pids, 200)
    code, listing = sessions("list", prefix=redis_prefix)
    assert "1 live session(s)" in listing and session_id_of(first) not in listing

    # Everything of one person.
    code, out = sessions("revoke", "--user", "alice@example.com", prefix=redis_prefix)
    assert code == 0 and "revoked 1 session(s)" in out
    await browser.refused_on_each_worker(second)
    code, out = sessions("revoke", "--user", "alice@example.com", prefix=redis_prefix)
    assert code == 1 and "no live session matches" in out


def test_memory_store_says_it_cannot() -> None:
    for args in (("list",), ("revoke", "--user", "alice@example.com")):
        code, out = sessions(*args, store="memory")
        assert code == 2 and "memory store lives inside each gate process" in out


def test_revoke_needs_one_target() -> None:
    for args in (("revoke",), ("revoke", "--user", "a", "--session", "b")):
        code, out = sessions(*args)
        assert code == 2 and "exactly one of --user NAME or --session ID" in out


def test_unreachable_store_is_a_clear_failure() -> None:
    code, out = sessions("list", store="redis://127.0.0.1:1/0")
    assert code == 2 and "the store is unreachable" in out and "Traceback" not in out


def test_session_ids_never_start_like_an_option() -> None:
    """A session ID is typed after --session: one starting with "-" would be read as an option
    (argparse exits 2); about one in 64 random IDs did."""
    from saml_gate.session.sessions import new_session_id

    ids = {new_session_id() for _ in range(5000)}
    assert len(ids) == 5000 and not any(i.startswith("-") for i in ids)
