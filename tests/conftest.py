from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair, generate_keypair
from tests import tiers
from tests.support import (
    BASE_URL,
    SECRET,
    FrozenClock,
    Harness,
    gate_options,
    idp_metadata,
    make_app,
)


def pytest_addoption(parser: pytest.Parser) -> None:
    tiers.add_option(parser)


@pytest.hookimpl(tryfirst=True)  # before -m reads the markers
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tiers.select(config, items)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def idp_keys() -> KeyPair:
    return generate_keypair("test IdP")


@pytest.fixture(scope="session")
def sp_keys() -> KeyPair:
    return generate_keypair("test SP")


@pytest.fixture(scope="session")
def attacker_keys() -> KeyPair:
    return generate_keypair("attacker")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


HarnessFactory = Callable[..., Any]


@pytest.fixture
async def make_harness(
    idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp_path: Any
) -> AsyncIterator[HarnessFactory]:
    clients: list[httpx.AsyncClient] = []

    def factory(app: Any = None, **overrides: Any) -> Harness:
        """A gate (around ``app``, by default tests.support's app) and a client for it."""
        gate = SamlGate(
            app or make_app(), **gate_options(idp_keys, sp_keys, clock, str(tmp_path), **overrides)
        )
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
        clients.append(client)
        return Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)

    yield factory
    for client in clients:
        await client.aclose()


TEST_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the Redis at 127.0.0.1:6379, emptied afterwards."""
    redis = pytest.importorskip("redis.asyncio", reason="pip install -e '.[test]' (redis-py)")
    client = redis.Redis.from_url(TEST_REDIS_URL)
    try:
        await client.ping()
    except (redis.RedisError, OSError):
        await client.aclose()
        pytest.skip(f"no Redis at {TEST_REDIS_URL}: apt-get install redis-server (.ci/run does)")
    prefix = f"saml-gate-test:{os.urandom(6).hex()}:"
    yield prefix
    keys = [key async for key in client.scan_iter(match=prefix + "*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def gate_env(tmp_path: Path, idp_keys: KeyPair, sp_keys: KeyPair) -> dict[str, str]:
    """A gate trusting the test IdP, as the ``SAML_GATE_*`` variables of a deployment (files
    in ``tmp_path``): for gates in subprocesses. A module overrides it to add its own."""
    files = {
        "idp.xml": idp_metadata(idp_keys).encode(),
        "sp.key.pem": sp_keys.key_pem,
        "sp.cert.pem": sp_keys.cert_pem,
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {
        "SAML_GATE_SECRET_KEY": SECRET,
        "SAML_GATE_IDP_METADATA": str(tmp_path / "idp.xml"),
        "SAML_GATE_SP_KEY": str(tmp_path / "sp.key.pem"),
        "SAML_GATE_SP_CERT": str(tmp_path / "sp.cert.pem"),
        "SAML_GATE_STATE_DIR": str(tmp_path / "state"),
    }


@pytest.fixture
async def harness(make_harness: HarnessFactory) -> Harness:
    h: Harness = make_harness()
    return h


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """In CI a skip is a failure: every component the tests need must be installed there."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {report.longrepr}"
