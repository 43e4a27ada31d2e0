"""IdP metadata by URL: fetched from a real local HTTP server, refreshed, rolled over, cached.

The fetch limits (size cap while streaming, one deadline, bounded redirects) are tested against
real loopback servers that misbehave on purpose: endless, bombed, trickling, redirecting.
"""

from __future__ import annotations

import asyncio
import http.server
import ssl
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from lxml import etree

from saml_gate import ConfigError, SamlGate
from saml_gate.runtime.idp_source import IdpMetadataSource, parse_duration, refresh_delay
from saml_gate.saml import xmlconst as X
from saml_gate.saml.keys import KeyPair
from tests.interop.tls import make_tls_files
from tests.support import (
    BASE_URL,
    FrozenClock,
    Harness,
    gate_options,
    idp_metadata,
    make_app,
    started,
)

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
METADATA_PATH = "/app/exk123/sso/saml/metadata"
Respond = Callable[[http.server.BaseHTTPRequestHandler], None]


class MetadataServer:
    """A real HTTP(S) server on loopback whose document (or misbehaviour) the test changes at will.

    ``redirects`` maps a path to the Location it answers with (302); ``respond`` replaces the
    normal answer for every other path. ``sent`` counts the body bytes a ``respond`` managed to
    write before the client went away, and ``done`` is set when it has finished.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.body = b""
        self.status = 200
        self.hits = 0
        self.redirects: dict[str, str] = {}
        self.respond: Respond | None = None
        self.sent = 0
        self.done = threading.Event()
        self.release = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                location = server.redirects.get(urlsplit(self.path).path)
                if location is not None:
                    self.send_response(302)
                    self.send_header("Location", location)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif server.respond is not None:
                    self.close_connection = True
                    try:
                        server.respond(self)
                    except OSError:  # the client closed the connection: what the tests want
                        pass
                    finally:
                        server.done.set()
                else:
                    self.send_response(server.status)
                    self.send_header("Content-Type", "application/samlmetadata+xml")
                    self.send_header("Content-Length", str(len(server.body)))
                    self.end_headers()
                    self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
            scheme = "https"
        self.origin = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.url = self.origin + METADATA_PATH
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def send_head(self, handler: http.server.BaseHTTPRequestHandler, *headers: str) -> None:
        """A 200 status line and headers, written raw (no Content-Length unless given)."""
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/samlmetadata+xml\r\n"
        handler.wfile.write((head + "".join(f"{h}\r\n" for h in headers) + "\r\n").encode())

    def send_chunked(
        self, handler: http.server.BaseHTTPRequestHandler, chunks: Iterable[bytes]
    ) -> None:
        self.send_head(handler, "Transfer-Encoding: chunked")
        for chunk in chunks:
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.sent += len(chunk)
        handler.wfile.write(b"0\r\n\r\n")

    async def finished(self) -> None:
        """Wait until ``respond`` has returned (its write failed once the client hung up)."""
        self.release.set()
        assert await asyncio.to_thread(self.done.wait, 60), "the server is still sending"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[MetadataServer]:
    s = MetadataServer()
    yield s
    s.stop()


def metadata_with(*keys: KeyPair) -> bytes:
    """The test IdP's metadata listing every key's certificate as a signing key."""
    root = etree.fromstring(idp_metadata(keys[0]).encode())
    ns = {"md": X.NS_MD}
    descriptor = root.find("md:IDPSSODescriptor", ns)
    first = descriptor.find("md:KeyDescriptor", ns)
    for extra in keys[1:]:
        other = etree.fromstring(idp_metadata(extra).encode())
        first.addnext(other.find("md:IDPSSODescriptor/md:KeyDescriptor", ns))
    return etree.tostring(root)


def harness_for(
    url: str, idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp: Path, **extra: Any
) -> Harness:
    gate = SamlGate(
        make_app(), **gate_options(idp_keys, sp_keys, clock, str(tmp), idp_metadata=url, **extra)
    )
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=gate), base_url=BASE_URL)
    return Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)


async def login_status(h: Harness, keys: KeyPair) -> int:
    h.client.cookies.clear()
    request_id, relay = await h.start_login()
    body = h.response_b64(h.spec(in_response_to=request_id), keys=keys)
    return (await h.post_acs(body, relay)).status_code


async def test_key_rollover_without_restart(
    server: MetadataServer,
    idp_keys: KeyPair,
    attacker_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    old, new = idp_keys, attacker_keys  # "attacker" plays the IdP's next key here
    server.body = metadata_with(old)
    h = harness_for(server.url, old, sp_keys, clock, tmp_path)
    source = h.gate.core.saml.source
    assert source is not None and source.is_url
    assert await login_status(h, old) == 303
    assert await login_status(h, new) == 400

    server.body = metadata_with(old, new)  # rollover starts: both keys published
    assert await source.refresh_now() is True
    assert await login_status(h, old) == 303
    assert await login_status(h, new) == 303

    server.body = metadata_with(new)  # rollover done
    assert await source.refresh_now() is True
    assert await login_status(h, old) == 400
    assert await login_status(h, new) == 303

    # A broken document, an error status or an outage never replace the last good copy.
    server.body = b"<html>maintenance</html>"
    assert await source.refresh_now() is False
    server.body, server.status = metadata_with(old), 503
    assert await source.refresh_now() is False
    server.stop()
    assert await source.refresh_now() is False
    assert await login_status(h, new) == 303
    assert "refresh" in caplog.text and "keeping the current copy" in caplog.text
    assert "HTTP 503 from" in caplog.text and "For more information" not in caplog.text
    assert source.cache_path.read_bytes() == metadata_with(new)
    await h.client.aclose()


async def test_unchanged_metadata_is_not_reloaded(
    server: MetadataServer, idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp_path: Path
) -> None:
    server.body = metadata_with(idp_keys)
    h = harness_for(server.url, idp_keys, sp_keys, clock, tmp_path)
    await h.gate.start()
    verifier = h.gate.core.saml.verifier
    assert await h.gate.core.saml.source.refresh_now() is False  # type: ignore[union-attr]
    assert h.gate.core.saml.verifier is verifier
    await h.client.aclose()


async def test_background_refresh_runs_in_the_event_loop(
    server: MetadataServer,
    idp_keys: KeyPair,
    attacker_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.body = metadata_with(idp_keys)
    h = harness_for(server.url, idp_keys, sp_keys, clock, tmp_path)
    source = h.gate.core.saml.source
    assert source is not None
    monkeypatch.setattr(source, "next_delay", lambda: 0.01)
    server.body = metadata_with(attacker_keys)
    await h.client.get("/saml/metadata")  # the first request starts the background work
    for _ in range(300):
        if h.gate.core.saml.idp.signing_certs == (attacker_keys.cert_pem,):
            break
        await asyncio.sleep(0.01)
    assert await login_status(h, attacker_keys) == 303
    await h.gate.stop()
    await h.client.aclose()


def test_startup_uses_the_cached_copy_when_the_idp_is_down(
    server: MetadataServer,
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("saml_gate.runtime.idp_source.RETRY_PAUSES", (0.0, 0.0))
    server.body = metadata_with(idp_keys)
    options = gate_options(
        idp_keys, sp_keys, clock, str(tmp_path), idp_metadata=server.url, verify_isolation="thread"
    )
    started(SamlGate(make_app(), **options))  # fetched and cached
    url = server.url
    server.stop()
    gate = started(SamlGate(make_app(), **options))
    assert gate.core.saml.idp.signing_certs == (idp_keys.cert_pem,)
    assert gate.core.saml.source is not None and gate.core.saml.source.last_error
    empty = SamlGate(make_app(), **{**options, "state_dir": str(tmp_path / "empty")})
    with pytest.raises(ConfigError) as error:
        started(empty)
    assert error.value.setting == "idp_metadata" and url in str(error.value)


def test_refresh_schedule_honours_cache_duration_and_valid_until() -> None:
    assert parse_duration("PT1H") == 3600 and parse_duration("P1DT30M") == 86400 + 1800
    assert parse_duration("PT") is None and parse_duration("1 hour") is None
    now = 1_000_000.0
    assert refresh_delay('<md:EntityDescriptor cacheDuration="PT10M">', 3600, now) == 600
    assert refresh_delay("<md:EntityDescriptor>", 3600, now) == 3600
    until = "1970-01-12T14:00:00Z"  # 1,000,800 s after the epoch: 800 s from now
    assert refresh_delay(f'<x validUntil="{until}">', 3600, now) == 400
    assert refresh_delay('<x cacheDuration="PT1S">', 3600, now) == 60  # never hammer the IdP


# ---------------------------------------------------------------- fetch limits and redirects


@pytest.fixture
def build(
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., SamlGate]:
    """Build a gate on a metadata URL, each with an empty state_dir (no cached copy to fall
    back on), without the pauses between start-up retries (the gate fetches at start-up:
    :func:`started`, or ``await gate.start()``)."""
    monkeypatch.setattr("saml_gate.runtime.idp_source.RETRY_PAUSES", (0.0, 0.0))
    built = 0

    def build(url: str, **extra: Any) -> SamlGate:
        nonlocal built
        built += 1
        state = str(tmp_path / f"state{built}")
        options = gate_options(idp_keys, sp_keys, clock, state, idp_metadata=url, **extra)
        return SamlGate(make_app(), **{"verify_isolation": "thread", **options})

    return build


def source_of(gate: SamlGate) -> IdpMetadataSource:
    assert gate.core.saml.source is not None
    return gate.core.saml.source


def startup_error(build: Callable[..., SamlGate], url: str, **extra: Any) -> str:
    gate = build(url, **extra)  # building fetches nothing: start-up does
    with pytest.raises(ConfigError) as error:
        started(gate)
    assert error.value.setting == "idp_metadata" and "\n" not in str(error.value)
    return error.value.problem


def refresh_error(caplog: pytest.LogCaptureFixture) -> str:
    """The log line of the last failed refresh: one line, names the setting, no traceback."""
    records = [r for r in caplog.records if getattr(r, "event", "") == "metadata_refresh_failed"]
    assert records
    message = records[-1].getMessage()
    assert records[-1].exc_info is None and "\n" not in message
    assert "idp_metadata refresh" in message and "For more information" not in message
    return message


def gzip_of(size: int, piece: bytes = bytes(MIB)) -> bytes:
    """``size`` bytes of ``piece`` repeated, gzip-compressed without holding them all."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(piece) for _ in range(size // len(piece))]
    return b"".join(parts) + packer.flush()


def test_content_length_over_the_cap_is_refused_at_startup(
    server: MetadataServer, idp_keys: KeyPair, build: Callable[..., SamlGate]
) -> None:
    server.body = metadata_with(idp_keys) + b" " * 8192
    problem = startup_error(build, server.url, metadata_max_bytes=4096)
    assert "larger than metadata_max_bytes (4096 bytes): the server announces" in problem
    assert server.url in problem


async def test_content_length_over_the_cap_is_refused_before_the_body(
    server: MetadataServer,
    idp_keys: KeyPair,
    build: Callable[..., SamlGate],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.body = metadata_with(idp_keys)
    source = source_of(started(build(server.url, metadata_max_bytes=64 * 1024)))
    total = 50 * MIB

    def announce(handler: http.server.BaseHTTPRequestHandler) -> None:
        server.send_head(handler, f"Content-Length: {total}")
        server.release.wait(60)  # no body byte until the client has decided
        for _ in range(total // 65536):
            handler.wfile.write(b" " * 65536)
            server.sent += 65536

    server.respond = announce
    assert await source.refresh_now() is False
    assert server.sent == 0
    assert f"the server announces {total} bytes" in refresh_error(caplog)
    await server.finished()
    assert source.current is not None and source.current.signing_certs == (idp_keys.cert_pem,)


async def test_an_endless_body_is_cut_at_the_cap(
    server: MetadataServer,
    idp_keys: KeyPair,
    build: Callable[..., SamlGate],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.body = metadata_with(idp_keys)
    source = source_of(started(build(server.url, metadata_max_bytes=64 * 1024)))
    total = 50 * MIB
    server.respond = lambda handler: server.send_chunked(
        handler, (b" " * 65536 for _ in range(total // 65536))
    )
    assert await source.refresh_now() is False
    assert "larger than metadata_max_bytes (65536 bytes); download stopped" in refresh_error(caplog)
    await server.finished()  # its writes failed: the client closed the connection
    assert server.sent < total // 4  # the rest was never sent, let alone read


async def test_a_gzip_bomb_is_capped_on_its_decoded_size(
    server: MetadataServer,
    idp_keys: KeyPair,
    build: Callable[..., SamlGate],
    caplog: pytest.LogCaptureFixture,
) -> None:
    def gzipped(body: bytes) -> Respond:
        def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
            server.send_head(handler, "Content-Encoding: gzip", f"Content-Length: {len(body)}")
            handler.wfile.write(body)

        return respond

    document = metadata_with(idp_keys)
    server.respond = gzipped(gzip_of(len(document), document))  # a real gzip answer is read
    source = source_of(started(build(server.url, metadata_max_bytes=256 * 1024)))
    assert source.current is not None and source.current.signing_certs == (idp_keys.cert_pem,)

    bomb = gzip_of(100 * MIB)
    assert len(bomb) < 256 * 1024  # the compressed size passes the Content-Length check
    server.respond = gzipped(bomb)
    tracemalloc.start()
    try:
        assert await source.refresh_now() is False
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "larger than metadata_max_bytes (262144 bytes)" in refresh_error(caplog)
    assert peak < 16 * MIB  # decoding one 64 KiB read of the bomb in one go is ~64 MiB


async def test_a_trickling_server_is_cut_at_the_deadline(
    server: MetadataServer,
    idp_keys: KeyPair,
    build: Callable[..., SamlGate],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.body = metadata_with(idp_keys)
    source = source_of(started(build(server.url, metadata_timeout=0.5)))

    def trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
        # A byte every 50 ms, no single read ever waits metadata_timeout; after 10 s (if the
        # client is still there) it hangs up, which is another error than the deadline's.
        server.send_head(handler, "Content-Length: 100000")
        for _ in range(200):
            if server.release.wait(0.05):
                return
            handler.wfile.write(b" ")
            server.sent += 1

    server.respond = trickle
    assert await source.refresh_now() is False
    assert "no complete answer within metadata_timeout (0.5 s)" in refresh_error(caplog)
    assert server.sent > 0


def test_redirects_are_followed_a_bounded_number_of_times(
    server: MetadataServer, idp_keys: KeyPair, build: Callable[..., SamlGate]
) -> None:
    server.body = metadata_with(idp_keys)
    server.redirects = {
        "/moved": server.url,  # absolute
        "/app/exk123/sso/saml/old": "metadata",  # relative to the current URL
        "/hop/1": METADATA_PATH,
        **{f"/hop/{n}": f"/hop/{n - 1}" for n in range(2, 7)},
    }
    for path in ("/moved", "/app/exk123/sso/saml/old", "/hop/5"):
        gate = started(build(server.origin + path))
        assert gate.core.saml.idp.signing_certs == (idp_keys.cert_pem,)
    assert server.hits == 2 + 2 + 6

    server.hits = 0
    assert "more than 5 redirects" in startup_error(build, server.origin + "/hop/6")
    assert server.hits == 3 * 6  # three attempts, the 7th URL never requested


def test_redirects_never_leave_https_or_loopback_http(
    server: MetadataServer,
    idp_keys: KeyPair,
    build: Callable[..., SamlGate],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = make_tls_files(tmp_path / "tls", ["localhost"])
    monkeypatch.setenv("SSL_CERT_FILE", str(files.ca_cert))  # httpx trusts the test CA
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert, files.key)
    secure = MetadataServer(tls=context)
    try:
        server.body = secure.body = metadata_with(idp_keys)
        secure.redirects = {"/moved": METADATA_PATH, "/to-http": server.url}
        server.redirects = {
            "/to-https": secure.url,
            "/to-public-http": "http://idp.example.com/metadata",
            "/to-file": "file:///etc/passwd",
        }
        # Followed: https → https, and loopback http up to https.
        for url in (secure.origin + "/moved", server.origin + "/to-https"):
            assert started(build(url)).core.saml.idp.signing_certs == (idp_keys.cert_pem,)
        hits = server.hits

        problem = startup_error(build, secure.origin + "/to-http")
        assert f"redirect to another scheme refused (https → {server.url})" in problem
        assert server.hits == hits  # the http URL was never requested
        problem = startup_error(build, server.origin + "/to-public-http")
        assert "redirect to a non-loopback http URL refused" in problem
        problem = startup_error(build, server.origin + "/to-file")
        assert "redirect to another scheme refused (http → file:///etc/passwd)" in problem
    finally:
        secure.stop()
