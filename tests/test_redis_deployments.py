"""Redis as people deploy it: TLS (``rediss://``), Redis Cluster and Sentinel, each started here.

Every server is a redis-server of the test's own on free loopback ports (tests/redis_sites.py): a
CA and certificates made at test time (``cryptography``) for TLS, a cluster of three masters
(joined with ``redis-cli --cluster create``, with or without a replica each), and a master, a
replica and a sentinel; the cluster and the Sentinel site also over TLS only. The gate reaches
each through the ``store`` URL form the README documents, and the test drives real sign-ins,
sign-outs and replays through it. Under Sentinel (``SENTINEL FAILOVER``) and in a cluster
(``CLUSTER FAILOVER`` on the replica of the gate's slot) a failover happens in the middle of
traffic: no confirmed sign-in is lost and no confirmed sign-out is undone.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from saml_gate.errors import ConfigError
from saml_gate.store import RedisStore, StoreUnavailable
from saml_gate.store.base import Put
from saml_gate.store.redis_url import parse, redacted
from tests.redis_sites import (
    BIG_GROUPS,
    JSON,
    START_GUARD,
    LocalCA,
    Servers,
    Tls,
    acknowledged,
    answers,
    cli,
    free_ports,
    listen,
    nothing_confirmed_lost,
    poll,
    revoked_everywhere,
    role,
    sign_in,
    start_cluster,
    start_sentinel_site,
    status,
    traffic_through,
)
from tests.support import Harness

pytestmark = pytest.mark.anyio


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    running = Servers(tmp_path)
    yield running
    running.stop()


@pytest.fixture
async def make_harness(make_harness: Any) -> AsyncIterator[Any]:
    """conftest's ``make_harness``, each gate stopped at the end (its Redis clients closed: one
    left to the garbage collector logs an error in a later test)."""
    made: list[Harness] = []

    def factory(**overrides: Any) -> Harness:
        made.append(make_harness(**overrides))
        return made[-1]

    yield factory
    for h in made:
        await h.gate.stop()


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return Tls(LocalCA(tmp_path))


async def exercise(caplog: pytest.LogCaptureFixture, make_harness: Any, store: str) -> None:
    """Sign-in, a large identity kept in the store, replay refused, a sign-out seen by a second
    gate process sharing the store; the subscription that pushes revocations never failed."""
    # store_timeout 2 s: with Sentinel a write waits for the replica's acknowledgement (WAIT,
    # half of store_timeout), which a CI machine busy with other tests may send after 0.25 s
    one: Harness = make_harness(store=store, store_prefix="deploy:", store_timeout=2.0)
    two: Harness = make_harness(store=store, store_prefix="deploy:", store_timeout=2.0)
    alice = await sign_in(one)
    big = await sign_in(one, attributes={"email": ["b@example.com"], "groups": BIG_GROUPS})
    assert await status(two, alice) == 200
    two.client.cookies.set("saml_gate_session", big)
    seen = await two.client.get("/private/p", headers=JSON)
    assert seen.status_code == 200 and len(seen.json()["groups"]) == len(BIG_GROUPS)

    one.client.cookies.clear()
    request_id, relay = await one.start_login()
    response = one.response_b64(one.spec(in_response_to=request_id))
    cookies = dict(one.client.cookies)  # copied by an attacker, with the Response
    assert (await one.post_acs(response, relay)).status_code == 303
    for name, value in cookies.items():
        two.client.cookies.set(name, value)
    replay = await two.client.post(
        "/saml/acs", data={"SAMLResponse": response, "RelayState": relay}
    )
    assert replay.status_code == 400 and "replayed" in replay.text

    await revoked_everywhere(one, two, alice)  # signed out (the IdP has no SLO endpoint)
    assert await status(two, big) == 200
    trouble = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR or getattr(r, "event", "") == "store_feed_lost"
    ]
    assert not trouble, trouble


# ------------------------------------------------------------------------------------ URL forms
def test_each_url_form_parses_and_bad_ones_say_what_to_change() -> None:
    cluster = parse("redis+cluster://u:pw@10.0.0.1:7000,10.0.0.2:7001")
    assert cluster.kind == "cluster" and not cluster.tls
    assert cluster.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert (cluster.username, cluster.password, cluster.wait_replicas) == ("u", "pw", 0)
    sentinel = parse("rediss+sentinel://:pw@s1,s2:26380/mymaster/2?ssl_ca_certs=/ca.pem")
    assert sentinel.kind == "sentinel" and sentinel.tls and sentinel.service == "mymaster"
    assert sentinel.nodes == (("s1", 26379), ("s2", 26380)) and sentinel.db == 2
    assert sentinel.tls_options == {"ssl_ca_certs": "/ca.pem"} and sentinel.wait_replicas == 1
    assert parse("redis+sentinel://s1/m?wait_replicas=0").wait_replicas == 0
    assert parse("redis+cluster://h:1?wait_replicas=1").wait_replicas == 1
    assert parse("rediss://h:6380/1?ssl_ca_certs=/ca.pem&wait_replicas=1").server_url == (
        "rediss://h:6380/1?ssl_ca_certs=%2Fca.pem"
    )
    for bad, says in [
        ("mongodb://h", "a Redis URL starts with one of"),
        ("redis+sentinel://h:1", "/service-name[/db]"),
        ("redis+cluster://h:1/0", "no path"),
        ("redis+cluster://h:x", "host:port"),
        ("redis+cluster://h:1?ssl_ca_certs=/ca.pem", "rediss+... only"),
        ("redis+sentinel://h:1/m?wait_replicas=lots", "whole number"),
    ]:
        with pytest.raises(ValueError, match=says.replace("[", r"\[").replace("+", r"\+")):
            parse(bad)
    assert redacted("redis+sentinel://u:pw@h:1,h:2/m?sentinel_password=s") == (
        "redis+sentinel://u:***@h:1,h:2/m?sentinel_password=%2A%2A%2A"
    )


async def test_a_bad_store_url_fails_at_start_up_naming_the_setting(make_harness: Any) -> None:
    with pytest.raises(ConfigError, match="store") as caught:
        make_harness(store="redis+cluster://:secret@h:1?bogus=1")
    assert "bogus" in str(caught.value) and "secret" not in str(caught.value)


# ------------------------------------------------------------------------------------ TLS
async def test_rediss_with_a_test_ca_and_client_certificates(
    servers: Servers, tls: Tls, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    (port,) = free_ports(1)
    servers.start("tls", *listen(port, tls))
    poll(lambda: answers(port, tls), "the TLS redis-server answers", servers)

    await exercise(caplog, make_harness, f"rediss://127.0.0.1:{port}/0?{tls.query()}")

    # Without the CA the server's certificate is not trusted; in clear text it does not answer.
    client = f"ssl_certfile={tls.client_cert}&ssl_keyfile={tls.client_key}"
    for url in (f"rediss://127.0.0.1:{port}/0?{client}", f"redis://127.0.0.1:{port}/0"):
        store = RedisStore.from_url(url, prefix="deploy:", timeout=2.0)
        with pytest.raises(StoreUnavailable):
            await store.add_once("k", 10)
        await store.close()


# ------------------------------------------------------------------------------------ Cluster
async def test_cluster_of_three_masters_keys_share_one_hash_slot(
    servers: Servers, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Without replicas, with the default wait_replicas (0): nothing waits for a replica."""
    site = start_cluster(servers)
    await exercise(caplog, make_harness, site.url())

    # Every key of the gate carries the prefix's hash tag: one slot, on one master.
    holding = {port: cli(port, None, "--scan", "--pattern", "*").split() for port in site.ports}
    keys = [key for found in holding.values() for key in found]
    assert keys and all(key.startswith("{deploy:}") for key in keys), holding
    assert sum(1 for found in holding.values() if found) == 1, holding


@contextmanager
def stopped(servers: Servers, name: str) -> Iterator[None]:
    """The redis-server ``name`` frozen (SIGSTOP), as a replica that has stopped answering."""
    process = servers.processes[servers.names.index(name)]
    os.kill(process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(process.pid, signal.SIGCONT)


@pytest.mark.parametrize("wait_replicas", [1, 0])
async def test_cluster_failover_in_the_middle_of_traffic_loses_nothing_confirmed(
    servers: Servers, make_harness: Any, wait_replicas: int
) -> None:
    """Three masters with a replica each; the replica of the master that holds the gate's slot
    takes over (``CLUSTER FAILOVER``) while four users sign in and out. With writes confirmed
    by a replica (``wait_replicas=1``) and without (the default: a planned failover waits for
    the replica to catch up, so it loses nothing either)."""
    site = start_cluster(servers, replicas=1)
    url = site.url(f"wait_replicas={wait_replicas}")
    # store_timeout 2 s, as above: a write confirmed by a replica waits for its acknowledgement
    # (WAIT, half of store_timeout), which a busy machine sent after 0.5 s twice in ~20 runs
    options = {"store": url, "store_prefix": "failover:", "store_timeout": 2.0}
    gate: Harness = make_harness(**options)
    watcher: Harness = make_harness(**options)  # another gate process, living through it
    master, replica = site.shard_of("{failover:}")
    assert replica is not None
    await sign_in(watcher)  # started: it follows the revocations

    def took_over() -> bool:
        return (
            role(replica) == "master"
            and role(master) == "slave"
            and site.shard_of("{failover:}") == (replica, master)  # as the cluster sees it
        )

    async def failover() -> None:
        # A manual failover is abandoned when the replica does not catch up within the
        # cluster's 5-second manual-failover window (a loaded machine, traffic meanwhile):
        # ask again until it takes, within the hang guard.
        with anyio.fail_after(2 * START_GUARD):
            while True:
                if role(replica) != "master":
                    assert "OK" in cli(replica, None, "cluster", "failover")
                with anyio.move_on_after(8):
                    while not took_over():
                        await anyio.sleep(0.05)
                if took_over():
                    return

    seen = await traffic_through(gate, failover)
    # The sign-outs below are confirmed by the new master's replica (the old master) once it
    # follows: as at the start, wait until the new master counts it.
    poll(lambda: acknowledged(replica, None, 1), "the new master's replica acknowledges writes")

    # A gate process that never saw any of it, the gate that lived through it and the other one.
    fresh: Harness = make_harness(**options)
    await nothing_confirmed_lost(seen, [fresh, gate, watcher])
    # A sign-out after the failover reaches the other gates through their revocation view.
    await revoked_everywhere(fresh, watcher, seen.live[0])
    await revoked_everywhere(gate, watcher, seen.live[1])

    # What wait_replicas buys: with the replica frozen, a write is not confirmed (503 for the
    # user); with wait_replicas=0 the same write counts as done while no replica has it, and a
    # failover from that replica (e.g. the master lost) would lose it.
    for waits, confirmed in ((1, False), (0, True)):
        store = RedisStore.from_url(
            site.url(f"wait_replicas={waits}"), prefix="failover:", timeout=0.5
        )
        with stopped(servers, f"node{master}"):  # now the replica
            try:
                await store.write([Put(f"unconfirmed-{waits}", "v", 60)])
                done = True
            except StoreUnavailable:
                done = False
        await store.close()
        assert done is confirmed, (waits, done)


async def test_rediss_cluster_with_replicas_over_tls(
    servers: Servers, tls: Tls, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """TLS only: clients, the cluster bus and replication; writes wait for a replica."""
    site = start_cluster(servers, replicas=1, tls=tls)
    await exercise(caplog, make_harness, site.url("wait_replicas=1"))


# ------------------------------------------------------------------------------------ Sentinel
async def test_sentinel_failover_in_the_middle_of_traffic_loses_nothing_confirmed(
    servers: Servers, tmp_path: Path, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    site = start_sentinel_site(servers, tmp_path)
    await exercise(caplog, make_harness, site.url())

    options = {"store": site.url(), "store_prefix": "failover:", "store_timeout": 1.0}
    gate: Harness = make_harness(**options)
    seen = await traffic_through(gate, site.failover)
    assert site.master_port() == site.replica

    # A gate process that never saw any of it, reading only the new master; and the gate that
    # lived through it.
    fresh: Harness = make_harness(**{**options, "store_timeout": 2.0})
    await nothing_confirmed_lost(seen, [fresh, gate])
    await revoked_everywhere(fresh, gate, seen.live[0])  # the revocation view still pushed


async def test_rediss_sentinel_over_tls(
    servers: Servers, tls: Tls, tmp_path: Path, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """TLS only: to the sentinel, the master and between master and replica."""
    site = start_sentinel_site(servers, tmp_path, tls)
    await exercise(caplog, make_harness, site.url())
