"""Redis as people deploy it: TLS (``rediss://``), Redis Cluster and Sentinel, each started here.

Every server is a redis-server of the test's own on free loopback ports: a TLS server whose CA
and certificates are made at test time (``cryptography``), a cluster of three masters (joined
with ``redis-cli --cluster create``), and a master, a replica and a sentinel. The gate reaches
each through the ``store`` URL form the README documents, and the test drives real sign-ins,
sign-outs and replays through it. Under Sentinel a failover (``SENTINEL FAILOVER``) happens in
the middle of traffic: no confirmed sign-in is lost and no confirmed sign-out is undone.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from saml_gate.errors import ConfigError
from saml_gate.store import RedisStore, StoreUnavailable
from saml_gate.store.redis_url import parse, redacted
from tests.support import BASE_URL, Harness
from tests.test_store_outage import free_port

pytestmark = pytest.mark.anyio

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}
START_GUARD = 30.0  # a bound on start-up and on a failover, never a timing assertion
BIG_GROUPS = [f"group-{i:03d}-with-a-long-name" for i in range(300)]  # kept in the store


# ------------------------------------------------------------------------------------ servers
def redis_binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server program: apt-get install redis-server (.ci/run does)")
    return binary


def redis_cli(*args: str) -> str:
    binary = shutil.which("redis-cli")
    if binary is None:
        pytest.skip("no redis-cli program: apt-get install redis-server (.ci/run does)")
    done = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=START_GUARD, check=False
    )
    return done.stdout + done.stderr


def poll(check: Callable[[], bool], what: str, servers: Servers | None = None) -> None:
    deadline = time.monotonic() + START_GUARD
    while time.monotonic() < deadline:
        if check():
            return
        if servers is not None:
            servers.check_running()
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


@dataclass
class Servers:
    """redis-server processes of this test, stopped at the end."""

    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def start(self, name: str, *args: str) -> None:
        log = (self.folder / f"{name}.log").open("wb")
        command = [redis_binary(), *args]
        if "--sentinel" not in args:
            command += ["--save", "", "--appendonly", "no"]
        command += ["--bind", "127.0.0.1", "--dir", str(self.folder), "--logfile", ""]
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        self.names.append(name)

    def check_running(self) -> None:
        for name, process in zip(self.names, self.processes, strict=True):
            if process.poll() is not None:
                log = (self.folder / f"{name}.log").read_text(errors="replace")
                raise AssertionError(f"redis-server {name} exited:\n{log[-2000:]}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=10)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    running = Servers(tmp_path)
    yield running
    running.stop()


def answers(port: int, *tls: str) -> bool:
    return "PONG" in redis_cli("-p", str(port), *tls, "ping")


# ------------------------------------------------------------------------------------ traffic
async def sign_in(h: Harness, **spec: Any) -> str:
    h.client.cookies.clear()
    r = await h.login(**spec)
    assert r.status_code == 303, r.text
    return r.cookies["saml_gate_session"]


async def status(h: Harness, cookie: str) -> int:
    h.client.cookies.clear()
    h.client.cookies.set("saml_gate_session", cookie)
    return (await h.client.get("/private/p", headers=JSON)).status_code


async def sign_out(h: Harness, cookie: str) -> int:
    h.client.cookies.clear()
    h.client.cookies.set("saml_gate_session", cookie)
    page = await h.client.get("/saml/logout")
    token = page.text.split("name=token value='")[1].split("'")[0]
    return (await h.client.post("/saml/logout", data={"token": token}, headers=HTML)).status_code


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

    assert await sign_out(one, alice) == 200  # signed out (the IdP has no SLO endpoint)
    assert await status(one, alice) == 401
    for _ in range(200):  # the revocation is pushed to the other gate: a hang guard, not a timer
        if await status(two, alice) == 401:
            break
        await anyio.sleep(0.01)
    assert await status(two, alice) == 401
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
@dataclass
class LocalCA:
    folder: Path
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "saml-gate test CA")])
        self.cert = (
            self._builder(name, name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.ca_path = self._write("ca.crt", self.cert.public_bytes(serialization.Encoding.PEM))

    def _builder(self, subject: x509.Name, issuer: x509.Name, key: Any) -> x509.CertificateBuilder:
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
        )

    def _write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)

    def issue(self, name: str) -> tuple[str, str]:
        """(certificate path, key path) for 127.0.0.1 / localhost, signed by this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        )
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            self._builder(subject, self.cert.subject, key.public_key())
            .add_extension(san, critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return (
            self._write(name + ".crt", cert.public_bytes(serialization.Encoding.PEM)),
            self._write(name + ".key", key_pem),
        )


async def test_rediss_with_a_test_ca_and_client_certificates(
    servers: Servers, tmp_path: Path, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ca = LocalCA(tmp_path)
    server_cert, server_key = ca.issue("server")
    client_cert, client_key = ca.issue("client")
    port = free_port()
    servers.start(
        "tls",
        *("--port", "0", "--tls-port", str(port)),
        *("--tls-cert-file", server_cert, "--tls-key-file", server_key),
        *("--tls-ca-cert-file", ca.ca_path, "--tls-auth-clients", "yes"),
    )
    tls = ("--tls", "--cacert", ca.ca_path, "--cert", client_cert, "--key", client_key)
    poll(lambda: answers(port, *tls), "the TLS redis-server answers", servers)

    options = f"ssl_ca_certs={ca.ca_path}&ssl_certfile={client_cert}&ssl_keyfile={client_key}"
    await exercise(caplog, make_harness, f"rediss://127.0.0.1:{port}/0?{options}")

    # Without the CA the server's certificate is not trusted; in clear text it does not answer.
    for url in (
        f"rediss://127.0.0.1:{port}/0?ssl_certfile={client_cert}&ssl_keyfile={client_key}",
        f"redis://127.0.0.1:{port}/0",
    ):
        store = RedisStore.from_url(url, prefix="deploy:", timeout=2.0)
        with pytest.raises(StoreUnavailable):
            await store.add_once("k", 10)
        await store.close()


# ------------------------------------------------------------------------------------ Cluster
async def test_cluster_of_three_masters_keys_share_one_hash_slot(
    servers: Servers, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ports = [free_port() for _ in range(3)]
    for port in ports:
        servers.start(
            f"node{port}",
            *("--port", str(port), "--cluster-enabled", "yes"),
            *("--cluster-port", str(free_port())),  # not port + 10000, which may pass 65535
            *("--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000"),
        )
    for port in ports:
        poll(lambda port=port: answers(port), f"cluster node {port} answers", servers)
    nodes = [f"127.0.0.1:{port}" for port in ports]
    created = redis_cli("--cluster", "create", *nodes, "--cluster-yes")
    assert "All 16384 slots covered" in created, created
    for port in ports:
        poll(
            lambda port=port: "cluster_state:ok" in redis_cli("-p", str(port), "cluster", "info"),
            "the cluster is ok",
            servers,
        )

    await exercise(
        caplog, make_harness, f"redis+cluster://127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}"
    )

    # Every key of the gate carries the prefix's hash tag: one slot, on one master.
    holding = {
        port: redis_cli("-p", str(port), "--scan", "--pattern", "*").split() for port in ports
    }
    keys = [key for found in holding.values() for key in found]
    assert keys and all(key.startswith("{deploy:}") for key in keys), holding
    assert sum(1 for found in holding.values() if found) == 1, holding


# ------------------------------------------------------------------------------------ Sentinel
@dataclass
class SentinelSite:
    master: int
    replica: int
    sentinel: int

    def master_port(self) -> int:
        out = redis_cli("-p", str(self.sentinel), "sentinel", "get-master-addr-by-name", "mymaster")
        return int(out.split()[1])

    def role(self, port: int) -> str:
        return redis_cli("-p", str(port), "role").split()[0] if answers(port) else ""


@pytest.fixture
def sentinel_site(servers: Servers, tmp_path: Path) -> SentinelSite:
    site = SentinelSite(free_port(), free_port(), free_port())
    servers.start("master", "--port", str(site.master), "--repl-diskless-sync-delay", "0")
    poll(lambda: answers(site.master), "the master answers", servers)
    servers.start(
        "replica",
        *("--port", str(site.replica), "--repl-diskless-sync-delay", "0"),
        *("--replicaof", "127.0.0.1", str(site.master)),
    )
    poll(
        lambda: (
            "master_link_status:up" in redis_cli("-p", str(site.replica), "info", "replication")
        ),
        "the replica is in sync",
        servers,
    )
    config = tmp_path / "sentinel.conf"
    config.write_text(
        f"port {site.sentinel}\n"
        f"sentinel monitor mymaster 127.0.0.1 {site.master} 1\n"
        "sentinel down-after-milliseconds mymaster 2000\n"
        "sentinel failover-timeout mymaster 10000\n"
    )
    servers.start("sentinel", str(config), "--sentinel")
    poll(lambda: answers(site.sentinel), "the sentinel answers", servers)
    poll(
        lambda: (
            f"{site.replica}"
            in redis_cli("-p", str(site.sentinel), "sentinel", "replicas", "mymaster")
        ),
        "the sentinel knows the replica",
        servers,
    )
    return site


async def test_sentinel_failover_in_the_middle_of_traffic_loses_nothing_confirmed(
    sentinel_site: SentinelSite, make_harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis+sentinel://127.0.0.1:{sentinel_site.sentinel}/mymaster/0"
    await exercise(caplog, make_harness, url)

    gate: Harness = make_harness(store=url, store_prefix="failover:", store_timeout=1.0)
    live: list[str] = []  # confirmed sign-ins (a cookie was issued), not signed out
    ended: list[str] = []  # confirmed sign-outs (200)
    refused: list[int] = []  # statuses of what was refused while the failover ran
    failover_over = anyio.Event()
    confirmed_after: list[str] = []

    async def user(number: int) -> None:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate.gate), base_url=BASE_URL)
        h = Harness(gate.gate, client, gate.idp_keys, gate.sp_keys, gate.clock)
        mine_after: list[str] = []
        async with client:
            for i in range(10_000):  # until two sign-ins after the failover (fail_after bounds it)
                if len(mine_after) >= 2:
                    return
                spec: dict[str, Any] = {"session_index": f"u{number}-{i}"}
                if i % 2:  # an identity too large for the cookie: kept in the store
                    spec["attributes"] = {"email": ["e@example.com"], "groups": BIG_GROUPS}
                h.client.cookies.clear()
                r = await h.login(**spec)
                await anyio.sleep(0.02)  # a steady trickle of traffic, not a busy loop
                if r.status_code != 303:
                    refused.append(r.status_code)
                    continue
                cookie = r.cookies["saml_gate_session"]
                if failover_over.is_set():
                    mine_after.append(cookie)
                    confirmed_after.append(cookie)
                assert await status(h, cookie) in (200, 503)
                if i % 3:
                    live.append(cookie)
                    continue
                out = await sign_out(h, cookie)  # unconfirmed (503): in neither list
                ended.append(cookie) if out == 200 else refused.append(out)

    async def failover() -> None:
        while len(live) + len(ended) < 8:  # traffic before the failover
            await anyio.sleep(0.02)
        old = sentinel_site.master_port()
        deadline = time.monotonic() + START_GUARD
        sentinel = ("-p", str(sentinel_site.sentinel), "sentinel")
        while "OK" not in redis_cli(*sentinel, "failover", "mymaster"):
            assert time.monotonic() < deadline, "the sentinel never accepted the failover"
            await anyio.sleep(0.1)
        # Over when the sentinel names the new master and the old one has become its replica.
        while not (
            sentinel_site.master_port() != old
            and sentinel_site.role(sentinel_site.master_port()) == "master"
            and sentinel_site.role(old) == "slave"
        ):
            assert time.monotonic() < deadline, "the failover never completed"
            await anyio.sleep(0.05)
        failover_over.set()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            for number in range(4):
                tasks.start_soon(user, number)
            tasks.start_soon(failover)
    assert sentinel_site.master_port() == sentinel_site.replica
    assert live and ended and confirmed_after  # traffic before, during and after
    assert set(refused) <= {503}, refused  # refused while writes could not be confirmed

    # A gate process that never saw any of it, reading only the new master; and the gate that
    # lived through it.
    fresh: Harness = make_harness(store=url, store_prefix="failover:", store_timeout=2.0)
    for h in (fresh, gate):
        assert {c: await status(h, c) for c in live} == dict.fromkeys(live, 200)
        assert {c: await status(h, c) for c in ended} == dict.fromkeys(ended, 401)
