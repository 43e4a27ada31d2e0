"""What every benchmark section shares: the budget, the result rows, the test IdP, ASGI calls.

Timing rule for the whole suite: a figure is the best of several rounds (the least disturbed by
other work on the machine), and every ratio is between figures measured in the same run.
"""

from __future__ import annotations

import base64
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio

from saml_gate import SamlGate
from saml_gate.config.settings import GateSettings
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.devidp.response import ResponseSpec, issue_response
from saml_gate.saml.keys import KeyPair, generate_keypair

BASE_URL = "http://127.0.0.1:8000"
ACS_URL = BASE_URL + "/saml/acs"
ENTITY_ID = BASE_URL + "/saml/metadata"
IDP_ENTITY_ID = "http://www.okta.com/exkBENCH0000000001"
IDP_SSO_URL = "https://bench.okta.test/app/sso/saml"
SECRET = "bench-secret-0123456789-abcdefghijklmnop"
NAME_ID = "alice@example.com"
ATTRIBUTES = {
    "email": ["alice@example.com"],
    "displayName": ["Alice Admin"],
    "groups": ["admins", "users"],
}
ASGI = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass(frozen=True)
class Budget:
    """How long to measure. ``quick`` is the CI smoke run: it must run, not be accurate."""

    quick: bool
    rounds: int
    scale: float

    @classmethod
    def of(cls, quick: bool) -> Budget:
        return cls(quick=True, rounds=2, scale=0.02) if quick else cls(False, 5, 1.0)

    def n(self, full: int, minimum: int = 2) -> int:
        """An iteration count: ``full`` in a full run, scaled down (not below minimum) if quick."""
        return max(minimum, int(full * self.scale))


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    section: str
    what: str
    figure: str
    target: str = ""
    met: bool | None = None
    """None when the row has no target (context, or the peer's own figure)."""
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Tables of their own (the peers section's, as docs/performance.md shows it), printed after
    the main table."""

    def add(self, row: Row) -> None:
        self.rows.append(row)
        flag = {True: "ok", False: "MISSED", None: ""}[row.met]
        print(f"  {row.what}: {row.figure}  {row.target} {flag}".rstrip(), flush=True)

    def table(self) -> str:
        heads = ("section", "measurement", "figure", "target", "met", "note")
        lines = [
            (
                r.section,
                r.what,
                r.figure,
                r.target,
                {True: "yes", False: "NO", None: ""}[r.met],
                r.note,
            )
            for r in self.rows
        ]
        widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(heads)]

        def fmt(cells: Iterable[str]) -> str:
            return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

        out = [fmt(heads), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out.extend(fmt(line) for line in lines)
        return "\n".join(out)


def per_second(seconds: float) -> str:
    return f"{1 / seconds:,.0f}/s ({seconds * 1e3:.3f} ms)"


def rss_bytes() -> int:
    """Resident set size of this process (Linux)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------- the test IdP
@dataclass(frozen=True)
class World:
    """An IdP key pair and an SP key pair, with the gate options that trust that IdP."""

    idp: KeyPair
    sp: KeyPair
    attacker: KeyPair
    state_dir: str

    @classmethod
    def create(cls) -> World:
        return cls(
            idp=generate_keypair("bench IdP"),
            sp=generate_keypair("bench SP"),
            attacker=generate_keypair("bench attacker"),
            state_dir=tempfile.mkdtemp(prefix="saml-gate-bench-"),
        )

    @property
    def metadata(self) -> str:
        return idp_metadata_xml(
            entity_id=IDP_ENTITY_ID, sso_url=IDP_SSO_URL, slo_url=None, keypair=self.idp
        ).decode()

    def gate_options(self, **overrides: Any) -> dict[str, Any]:
        options: dict[str, Any] = {
            "base_url": BASE_URL,
            "idp_metadata": self.metadata,
            "secret_key": SECRET,
            "sp_key": self.sp.key_pem.decode(),
            "sp_cert": self.sp.cert_pem.decode(),
            "state_dir": self.state_dir,
            # as the figures in docs/performance.md were measured (gc.freeze is opt-in now)
            "gc_freeze": True,
        }
        options.update(overrides)
        return options

    def gate(self, app: ASGI, **overrides: Any) -> SamlGate:
        return SamlGate(app, **self.gate_options(**overrides))

    def started_gate(self, app: ASGI, **overrides: Any) -> SamlGate:
        """A gate with its start-up loading done (IdP metadata, keys), as its lifespan does;
        its background work starts with its first request. Callable from a running loop."""
        gate = self.gate(app, **overrides)

        async def start_and_stop() -> None:
            await gate.start()
            await gate.stop()

        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(anyio.run, start_and_stop).result()
        return gate

    def settings(self, **overrides: Any) -> GateSettings:
        return GateSettings.load(environ={}, **self.gate_options(**overrides))

    def write(self, folder: Path) -> dict[str, str]:
        """The gate options as files, for a server in another process."""
        files = {
            "idp_metadata": self.metadata.encode(),
            "sp_key": self.sp.key_pem,
            "sp_cert": self.sp.cert_pem,
        }
        options = {"base_url": BASE_URL, "secret_key": SECRET, "state_dir": self.state_dir}
        for name, data in files.items():
            path = folder / name
            path.write_bytes(data)
            options[name] = str(path)
        return options


#: The three Response shapes compared throughout: Okta can send each of them.
SHAPES: dict[str, dict[str, Any]] = {
    "assertion-signed": {"sign_response": False},
    "both-signed": {},
    "encrypted (both-signed)": {"encrypt": True},
}


def response_b64(
    world: World,
    shape: str,
    *,
    request_id: str | None,
    now: datetime | None = None,
    keys: KeyPair | None = None,
) -> str:
    """A fresh dev-IdP Response (new IDs) of ``shape``, base64 as posted to the ACS."""
    options = dict(SHAPES[shape])
    if options.pop("encrypt", False):
        options["encrypt_to"] = world.sp.cert_pem
    spec = response_spec(request_id, now or datetime.now(UTC))
    return base64.b64encode(issue_response(spec, keys or world.idp, **options)).decode()


def response_spec(request_id: str | None, now: datetime) -> ResponseSpec:
    """What the benchmark IdP says about its user, answering ``request_id`` (None: unsolicited)."""
    return ResponseSpec(
        issuer=IDP_ENTITY_ID,
        destination=ACS_URL,
        audience=ENTITY_ID,
        name_id=NAME_ID,
        attributes=ATTRIBUTES,
        in_response_to=request_id,
        now=now,
    )


def _responses(args: tuple[World, str, list[str], datetime]) -> list[str]:
    world, shape, request_ids, now = args
    return [response_b64(world, shape, request_id=r, now=now) for r in request_ids]


def fresh_responses(world: World, shape: str, count: int, now: datetime) -> list[tuple[str, str]]:
    """``count`` (request ID, Response) pairs, signed in two processes (signing is slow)."""
    ids = [new_request_id() for _ in range(count)]
    chunks = [ids[i::2] for i in range(2)]
    with ProcessPoolExecutor(2) as pool:
        parts = list(pool.map(_responses, [(world, shape, c, now) for c in chunks]))
    return [
        pair
        for chunk, part in zip(chunks, parts, strict=True)
        for pair in zip(chunk, part, strict=True)
    ]


def new_request_id() -> str:
    return "id" + secrets.token_hex(16)


@dataclass(frozen=True)
class Login:
    """One browser's sign-in, ready to post: its pending-login cookie and the form body."""

    cookie: bytes
    body: bytes


def mint_login(settings: GateSettings, response: str, request_id: str, relay: Any) -> Login:
    """What the gate's 303 to the IdP would have given the browser, without the round trip.

    ``relay`` is a :class:`saml_gate.session.relay.RelayTracker` built from the same settings (same
    secret), so the gate accepts the pending cookie and RelayState as its own.
    """
    key, relay_state = relay.start()
    cookie = relay.pending_cookie(key, request_id, "/hello").split(b";")[0]
    body = urlencode({"SAMLResponse": response, "RelayState": relay_state}).encode()
    return Login(cookie=cookie, body=body)


# ---------------------------------------------------------------------------------- direct ASGI
async def hello_app(scope: Any, receive: Any, send: Any) -> None:
    """The bare app: the cheapest ASGI app there is."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})


def http_scope(
    method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def acs_scope(login: Login) -> dict[str, Any]:
    return http_scope(
        "POST",
        "/saml/acs",
        [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(login.body)).encode()),
            (b"cookie", login.cookie),
        ],
    )


async def call(app: ASGI, scope: dict[str, Any], body: bytes = b"") -> list[dict[str, Any]]:
    """One request straight into an ASGI app; the messages it sent."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def status_of(sent: list[dict[str, Any]]) -> int:
    return int(sent[0]["status"])


def header_values(sent: list[dict[str, Any]], name: bytes) -> list[bytes]:
    return [v for m in sent for k, v in m.get("headers", ()) if k.lower() == name]
