"""The reverse proxy as an ASGI app (:class:`ReverseProxy`) and the gate in front of it
(:func:`build_proxy_app`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Unpack

import httpx
from starlette.types import Receive, Scope, Send

from saml_gate.config.declaration import declarations
from saml_gate.config.options import ProxyOptions
from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.config.settings import GateSettings
from saml_gate.middleware import SamlGate
from saml_gate.proxy.headers import HeaderRules
from saml_gate.proxy.http import HttpForwarder
from saml_gate.proxy.websocket import WebSocketForwarder


class ReverseProxy:
    """An ASGI app forwarding every request to the upstream (put the gate in front of it)."""

    def __init__(self, settings: ProxySettings, gate: GateSettings) -> None:
        self.settings = settings
        self._headers = HeaderRules(settings, gate)
        self._http = HttpForwarder(settings, self._headers, debug=gate.debug)
        self._websocket = WebSocketForwarder(settings, self._headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http.forward(scope, receive, send)
        elif kind == "websocket":
            await self._websocket.forward(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        """The connection pool to the upstream (see :attr:`HttpForwarder.transport`)."""
        return self._http.transport

    def request_headers(
        self, scope: Scope, *, websocket: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """The headers to send upstream (see :meth:`HeaderRules.request_headers`)."""
        return self._headers.request_headers(scope, websocket=websocket)

    def response_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The upstream's headers to relay (see :meth:`HeaderRules.response_headers`)."""
        return self._headers.response_headers(headers)


def build_proxy_app(upstream: str | None = None, **options: Unpack[ProxyOptions]) -> SamlGate:
    """The gate in front of ``upstream`` (else ``SAML_GATE_UPSTREAM``). ``options``: the gate's
    settings (as for :class:`SamlGate`, ``store`` too) and the proxy's (``preserve_host``,
    ``connect_timeout``, ``upstream_timeout``); the rest come from ``SAML_GATE_*`` variables."""
    given: dict[str, Any] = dict(options)
    proxy_names = {d.name for d in declarations(ProxySettings)}
    proxy_options = {k: given.pop(k) for k in list(given) if k in proxy_names}
    if upstream is not None:
        proxy_options["upstream"] = upstream
    # The gate first, from the keywords (so a configuration file's policy reloads with them
    # still winning; ``store`` may be an object, which the gate tells apart); then the proxy it
    # guards, from the gate's settings.
    gate = SamlGate(_not_yet, **given)
    proxy_options.setdefault("config_file", gate.settings.config_file)
    gate.app = ReverseProxy(ProxySettings.load(**proxy_options), gate.settings)
    return gate


async def _not_yet(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise RuntimeError("the reverse proxy is not in place yet")
