"""Reverse-proxy mode: the gate in front of any web app, in any language, on this machine.

``build_proxy_app("http://127.0.0.1:3000", **options)`` returns a :class:`SamlGate` around a
:class:`ReverseProxy`: requests the gate lets through are forwarded with httpx, bodies streamed
both ways (never buffered), WebSockets relayed message by message.

Where each part lives:

* :mod:`~saml_gate.proxy.app` — :class:`ReverseProxy` and :func:`build_proxy_app`;
* :class:`ProxySettings` — the proxy's own settings, declared in
  :mod:`saml_gate.config.proxy_settings` with the gate's;
* :mod:`~saml_gate.proxy.headers` — the header contract: identity headers, what is dropped
  (:data:`FORWARDING_HEADERS`, hop-by-hop), ``X-Forwarded-*``, ``Location`` rewriting;
* :mod:`~saml_gate.proxy.http` — forwarding one HTTP request: body framing, streaming, and
  upstream failures as 502 or 504;
* :mod:`~saml_gate.proxy.websocket` — the WebSocket handshake and relay;
* :mod:`~saml_gate.proxy.failures` — one log line per failure, and the error page.
"""

from saml_gate.config.proxy_settings import ProxySettings
from saml_gate.proxy.app import ReverseProxy, build_proxy_app
from saml_gate.proxy.headers import FORWARDING_HEADERS, header_value

__all__ = ["FORWARDING_HEADERS", "ProxySettings", "ReverseProxy", "build_proxy_app", "header_value"]
