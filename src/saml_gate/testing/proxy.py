"""Proxy mode under test: a person signs in through ``build_proxy_app``, and a recording upstream
shows what the app behind the proxy receives (the ``X-Forwarded-*`` identity headers...).

The upstream is a real HTTP server on a loopback port (a thread of the test process), so the
proxy forwards exactly as in production.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

import httpx

from saml_gate.testing.clients import NAVIGATION
from saml_gate.testing.messages import PersonFields

if TYPE_CHECKING:
    from starlette.testclient import TestClient

    from saml_gate.testing.idp import SamlTestIdp


@dataclass(frozen=True)
class UpstreamRequest:
    """One request as the upstream received it."""

    method: str
    target: str
    """Path and query."""
    headers: httpx.Headers
    body: bytes


class RecordingUpstream:
    """An HTTP server on 127.0.0.1 that answers every request with 200 and a JSON echo of it,
    and keeps what it received in ``requests`` (oldest first)."""

    def __init__(self) -> None:
        self.requests: list[UpstreamRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self.requests))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


def _handler_for(requests: list[UpstreamRequest]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the proxy's connection pool expects

        def _record(self) -> None:
            headers = httpx.Headers(list(self.headers.items()))
            seen = UpstreamRequest(self.command, self.path, headers, self._body())
            requests.append(seen)
            echo = {"method": seen.method, "target": seen.target, "headers": dict(headers)}
            payload = json.dumps(echo).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _body(self) -> bytes:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0], 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test's output is not the place for an access log."""

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _record

    return Handler


class ProxyUnderTest:
    """``build_proxy_app`` in front of a :class:`RecordingUpstream`, with a ``TestClient``::

        with ProxyUnderTest(saml_idp, user_header="X-User") as proxy:
            seen = proxy.sign_in(email="ann@example.com", groups=["admins"])
            assert seen.headers["x-user"] == "ann@example.com"

    ``options``: gate and proxy options added to ``saml_idp.gate_options(base_url)``.
    """

    def __init__(
        self, idp: SamlTestIdp, *, base_url: str = "http://testserver", **options: Any
    ) -> None:
        self.idp = idp
        self._base_url = base_url
        self._options = options
        self.upstream: RecordingUpstream | None = None
        self._client: TestClient | None = None

    @property
    def client(self) -> TestClient:
        """The browser: a ``TestClient`` on the proxy app, open while the context lasts."""
        if self._client is None:
            raise RuntimeError("use ProxyUnderTest in a with block")
        return self._client

    @property
    def received(self) -> list[UpstreamRequest]:
        """What the upstream received so far, oldest first."""
        return self.upstream.requests if self.upstream is not None else []

    def __enter__(self) -> ProxyUnderTest:
        from starlette.testclient import TestClient

        from saml_gate.proxy import build_proxy_app

        self.upstream = RecordingUpstream()
        options = self.idp.gate_options(self._base_url, **self._options)
        app = build_proxy_app(self.upstream.url, **options)
        self._client = TestClient(app, base_url=self._base_url).__enter__()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self._client is not None:
                self._client.__exit__(kind, error, trace)
        finally:
            self._client = None
            if self.upstream is not None:
                self.upstream.close()

    def sign_in(self, *, path: str = "/", **person: Unpack[PersonFields]) -> UpstreamRequest:
        """Sign the person in through the proxy, load ``path`` and return what the upstream
        received for it."""
        self.idp.sign_in(self.client, path=path, **person)
        before = len(self.received)
        answer = self.client.get(path, headers=NAVIGATION, follow_redirects=False)
        if len(self.received) == before:
            raise AssertionError(f"GET {path} did not reach the upstream: {answer.status_code}")
        return self.received[-1]
