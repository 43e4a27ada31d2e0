"""Redis deployments started by a test on free loopback ports, and traffic through a failover.

Used by tests/test_redis_deployments.py: redis-server processes of the test's own (stopped at the
end by the ``servers`` fixture), a CA and certificates made at test time for TLS, a Redis
Cluster (masters, optionally each with a replica) and a Sentinel site (a master, a replica and a
sentinel); and four users signing in, making requests and signing out while a failover happens.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import BASE_URL, Harness

JSON = {"accept": "application/json"}
HTML = {"accept": "text/html"}
START_GUARD = 30.0  # a bound on start-up and on a failover, never a timing assertion
BIG_GROUPS = [f"group-{i:03d}-with-a-long-name" for i in range(300)]  # kept in the store


# ------------------------------------------------------------------------------------ processes
def free_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports free right now (all held open while choosing)."""
    with ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


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


async def poll_async(check: Callable[[], bool], what: str) -> None:
    """:func:`poll` for a test whose traffic runs meanwhile."""
    with anyio.fail_after(START_GUARD):
        while not check():
            await anyio.sleep(0.05)
    assert check(), what


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
            command += ["--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
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


@dataclass
class Tls:
    """A test CA, a server certificate every redis-server of the test uses (also as the client
    of its peers: replication, cluster bus) and a client certificate for redis-cli and the gate."""

    ca: LocalCA

    def __post_init__(self) -> None:
        self.server_cert, self.server_key = self.ca.issue("server")
        self.client_cert, self.client_key = self.ca.issue("client")

    def server_config(self, port: int) -> list[tuple[str, str]]:
        """Only TLS on ``port`` (no clear-text port), to clients, replicas and cluster peers."""
        return [
            ("port", "0"),
            ("tls-port", str(port)),
            ("tls-cert-file", self.server_cert),
            ("tls-key-file", self.server_key),
            ("tls-ca-cert-file", self.ca.ca_path),
            ("tls-auth-clients", "yes"),
            ("tls-replication", "yes"),
        ]

    def cli_args(self) -> tuple[str, ...]:
        ca, cert, key = self.ca.ca_path, self.client_cert, self.client_key
        return ("--tls", "--cacert", ca, "--cert", cert, "--key", key)

    def query(self) -> str:
        return urlencode(
            {
                "ssl_ca_certs": self.ca.ca_path,
                "ssl_certfile": self.client_cert,
                "ssl_keyfile": self.client_key,
            }
        )


def listen(port: int, tls: Tls | None) -> list[str]:
    """redis-server arguments to listen on ``port``, over TLS when ``tls`` is given."""
    config = tls.server_config(port) if tls else [("port", str(port))]
    return [arg for name, value in config for arg in (f"--{name}", value)]


def cli(port: int, tls: Tls | None, *args: str) -> str:
    return redis_cli("-p", str(port), *(tls.cli_args() if tls else ()), *args)


def answers(port: int, tls: Tls | None = None) -> bool:
    return "PONG" in cli(port, tls, "ping")


def role(port: int, tls: Tls | None = None) -> str:
    """``master``, ``slave`` or ``""`` when the server does not answer."""
    out = cli(port, tls, "role").split()
    return out[0] if out and out[0] in ("master", "slave", "sentinel") else ""


def in_sync(port: int, tls: Tls | None = None) -> bool:
    return "master_link_status:up" in cli(port, tls, "info", "replication")


# ------------------------------------------------------------------------------------ Cluster
@dataclass
class ClusterSite:
    ports: list[int]
    tls: Tls | None

    def url(self, query: str = "") -> str:
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        options = "&".join(q for q in (self.tls.query() if self.tls else "", query) if q)
        nodes = ",".join(f"127.0.0.1:{port}" for port in self.ports[:2])
        return f"{scheme}://{nodes}" + (f"?{options}" if options else "")

    def shard_of(self, key: str) -> tuple[int, int | None]:
        """(the master's port, its connected replica's port or None) for ``key``'s slot: the
        master as the first node sees it, the replica as that master's ROLE says."""
        slot = int(self.cli_first("cluster", "keyslot", key).strip())
        for fields in [line.split() for line in self.cli_first("cluster", "nodes").splitlines()]:
            if "master" not in fields[2] or "fail" in fields[2]:
                continue
            for held in fields[8:]:
                low, _, high = held.partition("-")
                if not held.startswith("[") and int(low) <= slot <= int(high or low):
                    master = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                    said = cli(master, self.tls, "role").split()  # master, offset, replicas
                    if said[:1] != ["master"]:  # the first node's view is behind a failover
                        return master, None
                    replicas = said[3::3]  # each replica: ip, port, offset
                    return master, (int(replicas[0]) if replicas else None)
        raise AssertionError(f"no master holds slot {slot}")

    def cli_first(self, *args: str) -> str:
        return cli(self.ports[0], self.tls, *args)


def start_cluster(servers: Servers, replicas: int = 0, tls: Tls | None = None) -> ClusterSite:
    """Three masters (each with ``replicas`` replicas) joined by ``redis-cli --cluster create``;
    returns once every node says ``cluster_state:ok`` and every replica is in sync."""
    ports = free_ports(3 * (1 + replicas) * 2)
    site = ClusterSite(ports[: len(ports) // 2], tls)
    for port, bus in zip(site.ports, ports[len(ports) // 2 :], strict=True):
        servers.start(
            f"node{port}",
            *listen(port, tls),
            *("--cluster-enabled", "yes", "--cluster-port", str(bus)),  # not port + 10000
            *("--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "2000"),
            *(("--tls-cluster", "yes") if tls else ()),
        )
    for port in site.ports:
        poll(lambda port=port: answers(port, tls), f"cluster node {port} answers", servers)
    nodes = [f"127.0.0.1:{port}" for port in site.ports]
    created = cli(
        site.ports[0],
        tls,
        "--cluster",
        "create",
        *nodes,
        "--cluster-replicas",
        str(replicas),
        "--cluster-yes",
    )
    assert "All 16384 slots covered" in created, created
    for port in site.ports:
        poll(
            lambda port=port: (
                "cluster_state:ok" in cli(port, tls, "cluster", "info")
                and (
                    acknowledged(port, tls, replicas)
                    if role(port, tls) == "master"
                    else in_sync(port, tls)
                )
            ),
            f"cluster node {port} is ok (a master: its replicas acknowledge; a replica: in sync)",
            servers,
        )
    return site


def acknowledged(port: int, tls: Tls | None, replicas: int) -> bool:
    """Whether the master at ``port`` has ``replicas`` replicas acknowledging its writes (what
    a ``wait_replicas`` write needs): a replica whose link is up counts only once the master
    has its first acknowledgement, up to a second later."""
    return not replicas or cli(port, tls, "wait", str(replicas), "1000").strip() == str(replicas)


# ------------------------------------------------------------------------------------ Sentinel
@dataclass
class SentinelSite:
    master: int
    replica: int
    sentinel: int
    tls: Tls | None = None

    def url(self, query: str = "") -> str:
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        options = "&".join(q for q in (self.tls.query() if self.tls else "", query) if q)
        return f"{scheme}://127.0.0.1:{self.sentinel}/mymaster/0" + (
            f"?{options}" if options else ""
        )

    def master_port(self) -> int:
        out = cli(self.sentinel, self.tls, "sentinel", "get-master-addr-by-name", "mymaster")
        return int(out.split()[1])

    async def failover(self) -> None:
        """``SENTINEL FAILOVER``; over once the sentinel names the new master and the old one
        has become its replica."""
        old = self.master_port()
        deadline = time.monotonic() + START_GUARD
        while "OK" not in cli(self.sentinel, self.tls, "sentinel", "failover", "mymaster"):
            assert time.monotonic() < deadline, "the sentinel never accepted the failover"
            await anyio.sleep(0.1)
        await poll_async(
            lambda: (
                self.master_port() != old
                and role(self.master_port(), self.tls) == "master"
                and role(old, self.tls) == "slave"
            ),
            "the Sentinel failover completed",
        )


def start_sentinel_site(servers: Servers, folder: Path, tls: Tls | None = None) -> SentinelSite:
    """A master, its replica (in sync) and a sentinel that knows both."""
    site = SentinelSite(*free_ports(3), tls=tls)
    servers.start("master", *listen(site.master, tls))
    servers.start(
        "replica", *listen(site.replica, tls), "--replicaof", "127.0.0.1", str(site.master)
    )
    config = folder / "sentinel.conf"
    lines = tls.server_config(site.sentinel) if tls else [("port", str(site.sentinel))]
    config.write_text(
        "".join(f"{name} {value}\n" for name, value in lines)
        + f"sentinel monitor mymaster 127.0.0.1 {site.master} 1\n"
        "sentinel down-after-milliseconds mymaster 2000\n"
        "sentinel failover-timeout mymaster 10000\n"
    )
    poll(lambda: answers(site.master, tls), "the master answers", servers)
    poll(lambda: in_sync(site.replica, tls), "the replica is in sync", servers)
    servers.start("sentinel", str(config), "--sentinel")
    poll(lambda: answers(site.sentinel, tls), "the sentinel answers", servers)
    poll(
        lambda: str(site.replica) in cli(site.sentinel, tls, "sentinel", "replicas", "mymaster"),
        "the sentinel knows the replica",
        servers,
    )
    return site


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


async def revoked_everywhere(one: Harness, two: Harness, cookie: str) -> None:
    """Sign ``cookie`` out on ``one``; ``two`` learns it through its revocation view (pushed by
    the store's feed, not read per request: ``two``'s view stays live)."""
    view = two.gate.core.revocations.view
    with anyio.fail_after(START_GUARD):  # a hang guard: the view reloads after a failover
        while not view.live:
            await anyio.sleep(0.01)
    known = set(view.revoked)
    assert await sign_out(one, cookie) == 200
    assert await status(one, cookie) == 401
    for _ in range(200):  # a hang guard, not a timer
        if set(view.revoked) - known:
            break
        await anyio.sleep(0.01)
    assert view.live and set(view.revoked) - known
    assert await status(two, cookie) == 401


@dataclass
class Traffic:
    """What users saw while a failover ran: confirmed sign-ins not signed out (``live``),
    confirmed sign-outs (``ended``), statuses refused, sign-ins confirmed after the failover."""

    live: list[str] = field(default_factory=list)
    ended: list[str] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


async def traffic_through(
    gate: Harness, failover: Callable[[], Awaitable[None]], users: int = 4
) -> Traffic:
    """``users`` concurrent users sign in (every other one with an identity kept in the store),
    make a request and sign out one sign-in in three, through ``gate``; once eight sign-ins or
    sign-outs are confirmed, ``failover()`` runs; each user stops after two sign-ins confirmed
    once it is over."""
    seen = Traffic()
    failover_over = anyio.Event()

    async def user(number: int) -> None:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate.gate), base_url=BASE_URL)
        h = Harness(gate.gate, client, gate.idp_keys, gate.sp_keys, gate.clock)
        mine_after = 0
        async with client:
            for i in range(10_000):  # until two sign-ins after the failover (fail_after bounds it)
                if mine_after >= 2:
                    return
                spec: dict[str, Any] = {"session_index": f"u{number}-{i}"}
                if i % 2:  # an identity too large for the cookie: kept in the store
                    spec["attributes"] = {"email": ["e@example.com"], "groups": BIG_GROUPS}
                h.client.cookies.clear()
                r = await h.login(**spec)
                await anyio.sleep(0.02)  # a steady trickle of traffic, not a busy loop
                if r.status_code != 303:
                    seen.refused.append(r.status_code)
                    continue
                cookie = r.cookies["saml_gate_session"]
                if failover_over.is_set():
                    mine_after += 1
                    seen.after.append(cookie)
                assert await status(h, cookie) in (200, 503)
                if i % 3:
                    seen.live.append(cookie)
                    continue
                out = await sign_out(h, cookie)  # unconfirmed (503): in neither list
                seen.ended.append(cookie) if out == 200 else seen.refused.append(out)

    async def fail_over() -> None:
        while len(seen.live) + len(seen.ended) < 8:  # traffic before the failover
            await anyio.sleep(0.02)
        await failover()
        failover_over.set()

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tasks:
            for number in range(users):
                tasks.start_soon(user, number)
            tasks.start_soon(fail_over)
    assert seen.live and seen.ended and seen.after  # traffic before, during and after
    assert set(seen.refused) <= {503}, seen.refused  # refused while writes were unconfirmed
    return seen


async def nothing_confirmed_lost(seen: Traffic, gates: list[Harness]) -> None:
    """On each gate: every confirmed sign-in still served, every confirmed sign-out refused."""
    for h in gates:
        assert {c: await status(h, c) for c in seen.live} == dict.fromkeys(seen.live, 200)
        assert {c: await status(h, c) for c in seen.ended} == dict.fromkeys(seen.ended, 401)
