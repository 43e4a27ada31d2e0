from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.support import BASE_URL, FrozenClock, Harness, gate_options, make_app


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
