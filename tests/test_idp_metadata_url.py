"""IdP metadata by URL: fetched from a real local HTTP server, refreshed, rolled over, cached."""

from __future__ import annotations

import asyncio
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from saml_gate import ConfigError, SamlGate
from saml_gate import xmlconst as X
from saml_gate.idp_source import parse_duration, refresh_delay
from saml_gate.keys import KeyPair
from tests.support import BASE_URL, FrozenClock, Harness, gate_options, idp_metadata, make_app

pytestmark = pytest.mark.anyio


class MetadataServer:
    """A real HTTP server on loopback whose document the test changes at will."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.hits = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                self.send_response(server.status)
                self.send_header("Content-Type", "application/samlmetadata+xml")
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args: Any) -> None:
                return None

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/app/exk123/sso/saml/metadata"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
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
    source = h.gate.core.idp_source
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
    assert source.cache_path.read_bytes() == metadata_with(new)
    await h.client.aclose()


async def test_unchanged_metadata_is_not_reloaded(
    server: MetadataServer, idp_keys: KeyPair, sp_keys: KeyPair, clock: FrozenClock, tmp_path: Path
) -> None:
    server.body = metadata_with(idp_keys)
    h = harness_for(server.url, idp_keys, sp_keys, clock, tmp_path)
    verifier = h.gate.core.verifier
    assert await h.gate.core.idp_source.refresh_now() is False  # type: ignore[union-attr]
    assert h.gate.core.verifier is verifier
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
    source = h.gate.core.idp_source
    assert source is not None
    monkeypatch.setattr(source, "next_delay", lambda: 0.01)
    server.body = metadata_with(attacker_keys)
    await h.client.get("/saml/metadata")  # the first request starts the background work
    for _ in range(300):
        if h.gate.core.idp.signing_certs == (attacker_keys.cert_pem,):
            break
        await asyncio.sleep(0.01)
    assert await login_status(h, attacker_keys) == 303
    await h.gate.core.stop_background()
    await h.client.aclose()


def test_startup_uses_the_cached_copy_when_the_idp_is_down(
    server: MetadataServer,
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("saml_gate.idp_source.time.sleep", lambda s: None)
    server.body = metadata_with(idp_keys)
    options = gate_options(idp_keys, sp_keys, clock, str(tmp_path), idp_metadata=server.url)
    SamlGate(make_app(), **options)  # fetched and cached
    url = server.url
    server.stop()
    gate = SamlGate(make_app(), **options)
    assert gate.core.idp.signing_certs == (idp_keys.cert_pem,)
    assert gate.core.idp_source is not None and gate.core.idp_source.last_error
    with pytest.raises(ConfigError) as error:
        SamlGate(make_app(), **{**options, "state_dir": str(tmp_path / "empty")})
    assert error.value.setting == "idp_metadata" and url in str(error.value)


def test_oversized_metadata_is_refused(
    server: MetadataServer,
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("saml_gate.idp_source.time.sleep", lambda s: None)
    server.body = metadata_with(idp_keys) + b" " * 8192
    with pytest.raises(ConfigError, match="idp_metadata"):
        SamlGate(
            make_app(),
            **gate_options(
                idp_keys,
                sp_keys,
                clock,
                str(tmp_path),
                idp_metadata=server.url,
                metadata_max_bytes=4096,
            ),
        )


def test_refresh_schedule_honours_cache_duration_and_valid_until() -> None:
    assert parse_duration("PT1H") == 3600 and parse_duration("P1DT30M") == 86400 + 1800
    assert parse_duration("PT") is None and parse_duration("1 hour") is None
    now = 1_000_000.0
    assert refresh_delay('<md:EntityDescriptor cacheDuration="PT10M">', 3600, now) == 600
    assert refresh_delay("<md:EntityDescriptor>", 3600, now) == 3600
    until = "1970-01-12T14:00:00Z"  # 1,000,800 s after the epoch: 800 s from now
    assert refresh_delay(f'<x validUntil="{until}">', 3600, now) == 400
    assert refresh_delay('<x cacheDuration="PT1S">', 3600, now) == 60  # never hammer the IdP
