"""From a ``store`` URL to a redis-py asyncio client: one URL form per way people deploy Redis.

- ``redis://[[user]:password@]host[:port][/db][?option=value...]``: one server; ``rediss://`` the
  same over TLS; ``unix:///path/to/redis.sock?db=0`` a local socket. redis-py parses these and
  takes its documented query options (``ssl_ca_certs=/path/ca.pem`` and the other ``ssl_*``).
- ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (``rediss+cluster://`` over TLS):
  Redis Cluster, any nodes of it to start from. Every key of one gate carries the hash tag of its
  prefix (``{saml-gate:}...``), so all of them live in one slot and any multi-key command, script,
  pipeline or transaction the store uses stays valid in a cluster. ``wait_replicas`` defaults to
  0 there: a cluster may have no replicas (writes would then never be confirmed), and a planned
  ``CLUSTER FAILOVER`` loses nothing anyway (the replica catches up before it takes over). With
  replicas, ``wait_replicas=1`` keeps confirmed writes through an unplanned failover too (the
  master lost): the writes and their ``WAIT`` go on one connection to the master of the gate's
  slot (:meth:`RedisConnection.slot_master`), and a redirection fails them closed.
- ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``
  (``rediss+sentinel://``: TLS to the sentinels and the master): the sentinels to ask for the
  master of ``service``; after a failover the client follows the new master. Writes are
  acknowledged by ``wait_replicas`` replicas (default 1: ``WAIT``) before they count, so a
  failover cannot lose a revocation, a replay key or an identity the store confirmed.

The cluster and sentinel forms take these query options, nothing else: ``ssl_ca_certs``,
``ssl_certfile``, ``ssl_keyfile``, ``ssl_check_hostname`` (true/false), ``ssl_cert_reqs``
(required/optional/none), ``sentinel_username``, ``sentinel_password`` (sentinel only) and
``wait_replicas`` (a number, every form). Parsing does no I/O and imports no redis-py; a bad URL
is a ``ValueError`` saying what to change (the store reports it as the ``store`` setting).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

Kind = Literal["server", "cluster", "sentinel"]

SCHEMES: Final[dict[str, tuple[Kind, bool]]] = {
    "redis": ("server", False),
    "rediss": ("server", True),
    "unix": ("server", False),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
}
_TLS_OPTIONS: Final = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_CERT_REQS: Final = ("required", "optional", "none")
_BOOLEANS: Final = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class RedisLocation:
    """A parsed ``store`` URL (no I/O)."""

    kind: Kind
    tls: bool
    nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    service: str = ""
    db: int = 0
    tls_options: dict[str, Any] = field(default_factory=dict)
    sentinel_auth: dict[str, str] = field(default_factory=dict)
    wait_replicas: int = 0
    #: For the one-server forms: the URL redis-py parses, without this module's own options.
    server_url: str = ""


@dataclass
class RedisConnection:
    """What :func:`connect` built: the client, what else to close, and how writes are kept."""

    client: Redis | RedisCluster
    location: RedisLocation
    others: list[Redis] = field(default_factory=list)
    #: A cluster's: how to reach one of its nodes directly (see :meth:`slot_master`).
    node_options: dict[str, Any] = field(default_factory=dict)
    _masters: dict[str, Redis] = field(default_factory=dict)

    def key_prefix(self, prefix: str) -> str:
        """The prefix the keys use: hash-tagged in a cluster, so they share one slot."""
        if self.location.kind != "cluster" or _has_hash_tag(prefix):
            return prefix
        return "{" + prefix + "}"

    async def slot_master(self, key: str) -> Redis:
        """A client (a small pool of its own) of the cluster master that holds ``key``'s slot,
        as the cluster client last learnt it: for writes that must share one connection with
        their ``WAIT``, which a cluster pipeline may not (it sends a keyless command to any
        node, and a redirected command again on another connection)."""
        from redis.asyncio import BlockingConnectionPool, Redis
        from redis.exceptions import SlotNotCoveredError

        cluster = self._cluster()
        await cluster.initialize()
        node = cluster.get_node_from_key(key)
        if node is None:
            raise SlotNotCoveredError(f"no cluster node holds the slot of {key!r}")
        if node.name not in self._masters:
            pool = BlockingConnectionPool(host=node.host, port=node.port, **self.node_options)
            self._masters[node.name] = Redis(connection_pool=pool)
        return self._masters[node.name]

    async def relearn_slots(self) -> None:
        """Ask the cluster again which node holds which slot (after a redirection)."""
        await self._cluster().nodes_manager.initialize()

    def _cluster(self) -> RedisCluster:
        from redis.asyncio.cluster import RedisCluster

        if not isinstance(self.client, RedisCluster):
            raise TypeError("not a Redis Cluster connection")
        return self.client

    async def aclose(self) -> None:
        await self.client.aclose()
        for other in [*self.others, *self._masters.values()]:
            await other.aclose()


def redacted(url: str) -> str:
    """The URL without its password (nor a ``sentinel_password``), for logs."""
    parts = urlsplit(url)
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    query = [
        (name, "***" if name == "sentinel_password" else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(netloc=userinfo + at + hosts, query=urlencode(query)))


def _has_hash_tag(prefix: str) -> bool:
    start = prefix.find("{")
    return start >= 0 and prefix.find("}", start + 2) > start


def _count(name: str, value: str) -> int:
    if not value.isdigit() or int(value) > 16:
        raise ValueError(f"{name}={value!r}: use a whole number of replicas, 0 to 16")
    return int(value)


def _nodes(hosts: str, default_port: int) -> tuple[tuple[str, int], ...]:
    nodes = []
    for node in hosts.split(","):
        host, colon, port = node.strip().rpartition(":")
        if not colon:
            host, port = node.strip(), str(default_port)
        host = host.strip("[]")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{node!r}: each node is host:port, separated by commas")
        nodes.append((host, int(port)))
    return tuple(nodes)


def parse(url: str) -> RedisLocation:
    """The location a ``store`` URL names; ``ValueError`` says what is wrong with it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        forms = ", ".join(s + "://" for s in SCHEMES)
        raise ValueError(f"{parts.scheme or url!r}: a Redis URL starts with one of {forms}")
    kind, tls = SCHEMES[scheme]
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    wait = _count("wait_replicas", options.pop("wait_replicas", "1" if kind == "sentinel" else "0"))
    if kind == "server":
        server_url = urlunsplit(parts._replace(query=urlencode(list(options.items()))))
        return RedisLocation(kind, tls, wait_replicas=wait, server_url=server_url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    if not hosts:
        raise ValueError("name at least one node: host:port[,host:port...]")
    path = [unquote(p) for p in parts.path.split("/") if p]
    service, db = "", 0
    if kind == "sentinel":
        if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
            raise ValueError(
                "the path is /service-name[/db], e.g. redis+sentinel://h:26379/mymaster/0"
            )
        service, db = path[0], int(path[1]) if len(path) == 2 else 0
    elif path:
        raise ValueError("a cluster URL has no path (a cluster has only database 0)")
    tls_options: dict[str, Any] = {}
    sentinel_auth: dict[str, str] = {}
    for name, value in options.items():
        if name in _TLS_OPTIONS and tls:
            tls_options[name] = value
        elif name == "ssl_check_hostname" and tls and value.lower() in _BOOLEANS:
            tls_options[name] = _BOOLEANS[value.lower()]
        elif name == "ssl_cert_reqs" and tls and value in _CERT_REQS:
            tls_options[name] = value
        elif name in ("sentinel_username", "sentinel_password") and kind == "sentinel":
            sentinel_auth[name.removeprefix("sentinel_")] = value
        else:
            raise ValueError(
                f"query option {name!r} is not understood here: use ssl_ca_certs, ssl_certfile,"
                " ssl_keyfile, ssl_check_hostname, ssl_cert_reqs (rediss+... only),"
                " sentinel_username, sentinel_password (sentinel only), wait_replicas"
            )
    return RedisLocation(
        kind,
        tls,
        nodes=_nodes(hosts, 26379 if kind == "sentinel" else 6379),
        username=unquote(username) or None,
        password=unquote(password) or None,
        service=service,
        db=db,
        tls_options=tls_options,
        sentinel_auth=sentinel_auth,
        wait_replicas=wait,
    )


def connect(url: str, *, timeout: float, max_connections: int) -> RedisConnection:
    """A client for ``url`` with bounded waits: ``timeout`` seconds to connect, per reply and
    for a pooled connection; one immediate retry (a reconnect), never a backoff sleep."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    location = parse(url)
    common: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 1),
    }
    if location.kind == "server":
        from redis.asyncio import BlockingConnectionPool, Redis

        pool = BlockingConnectionPool.from_url(
            location.server_url, max_connections=max_connections, timeout=timeout, **common
        )
        return RedisConnection(Redis(connection_pool=pool), location)
    auth: dict[str, Any] = {"username": location.username, "password": location.password}
    tls: dict[str, Any] = {"ssl": True, **location.tls_options} if location.tls else {}
    if location.kind == "cluster":
        from redis.asyncio.cluster import ClusterNode, RedisCluster
        from redis.asyncio.connection import Connection, SSLConnection

        cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in location.nodes],
            max_connections=max_connections,
            **common,
            **auth,
            **tls,
        )
        node_options = {
            "connection_class": SSLConnection if location.tls else Connection,
            "max_connections": max_connections,
            "timeout": timeout,
            **common,
            **auth,
            **location.tls_options,
        }
        return RedisConnection(cluster, location, node_options=node_options)
    from redis.asyncio.sentinel import Sentinel

    sentinel_kwargs = {**common, **tls, **location.sentinel_auth}
    sentinel = Sentinel(list(location.nodes), sentinel_kwargs=sentinel_kwargs)
    master = sentinel.master_for(
        location.service,
        db=location.db,
        max_connections=max_connections,
        **common,
        **auth,
        **tls,
    )
    return RedisConnection(master, location, others=list(sentinel.sentinels))
