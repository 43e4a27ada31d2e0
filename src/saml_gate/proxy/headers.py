"""The proxy's header contract: what is dropped, added and rewritten, in either direction.

Towards the upstream:

* ``X-Forwarded-User`` (the NameID), ``X-Forwarded-Email`` (when known) and
  ``X-Forwarded-Groups`` (comma-separated) on every request from a signed-in person; none of
  them on public paths or passed-through OPTIONS (see :mod:`saml_gate.identity.headers`), and
  the identity JWT (``jwt_header``) the gate put in the scope (``saml_gate.jwt``).
* Whatever the client sent under those names (the JWT's too), or the default names, is
  removed first, comparing case-insensitively with ``_`` read as ``-`` (servers that map
  headers to ``HTTP_*`` variables would otherwise merge ``X_Forwarded_User`` into
  ``X-Forwarded-User``).
* Every header through which a proxy reports what it saw of the request (the client's address,
  the scheme, host, port, path or method it used, its TLS client certificate: the
  :data:`FORWARDING_HEADERS`) is removed the same way: the gate is the proxy the upstream hears
  from. It sets ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` to what the browser used, and
  ``X-Forwarded-For`` to the client's own ``X-Forwarded-For`` lines (only when the peer is one of
  ``trusted_proxies``; spelled exactly so) followed by the peer's address.
* ``Host`` is the upstream's unless ``preserve_host``.
* The gate's own cookies (``{cookie_prefix}_*``) are removed from ``Cookie``.
* ``Content-Length`` is left to :mod:`saml_gate.proxy.http`, which frames the body again.

Either way, hop-by-hop headers (``Connection`` and what it names, ``Keep-Alive``, ``Proxy-*``,
``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``, ``Expect``) are not forwarded (from the
client: in any spelling, as above).

Towards the client: an upstream ``Location`` on the upstream's own origin is rewritten to
``base_url``; the upstream's ``Date`` and ``Server`` give way to those of the server running the
gate; an upstream ``Content-Length`` beside ``Transfer-Encoding`` is dropped (RFC 9112 §6.3).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Final
from urllib.parse import urlsplit

from starlette.types import Scope

from saml_gate.identity.headers import DEFAULT_IDENTITY_HEADERS, IdentityHeaders, header_value
from saml_gate.identity.tokens import JWT_SCOPE_KEY, jwt_header_name
from saml_gate.ip_addresses import CLIENT_HEADERS, ClientAddresses, peer_of
from saml_gate.session.cookies import without_cookies
from saml_gate.user import SamlUser

if TYPE_CHECKING:
    from saml_gate.config.proxy_settings import ProxySettings
    from saml_gate.config.settings import GateSettings

__all__ = ["DEFAULT_IDENTITY_HEADERS", "FORWARDING_HEADERS", "HeaderRules", "header_value"]
HOP_BY_HOP: Final = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
    }
)
#: Headers through which a proxy tells the app what it saw of the request (lower-case, ``-``
#: only): the client's address (:data:`saml_gate.ip_addresses.CLIENT_HEADERS` and the rest below),
#: the scheme, host, port, path or method it used, the TLS client certificate it checked. The
#: gate is the proxy the upstream hears from, so whatever the client sent under these names, in
#: any case and with ``_`` for ``-``, is never forwarded; the gate sets ``X-Forwarded-For``,
#: ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` itself (see :meth:`HeaderRules.request_headers`).
FORWARDING_HEADERS: Final = CLIENT_HEADERS | frozenset(
    {
        # the client's address
        b"client-ip",
        b"forwarded-for",
        b"x-forwarded",
        b"x-originating-ip",
        b"x-remote-addr",
        b"x-remote-ip",
        b"x-envoy-external-address",
        # the scheme
        b"x-forwarded-proto",
        b"x-forwarded-protocol",
        b"x-forwarded-scheme",
        b"x-forwarded-ssl",
        b"x-url-scheme",
        b"x-scheme",
        b"front-end-https",
        b"x-arr-ssl",
        # the host, port and server
        b"x-forwarded-host",
        b"x-forwarded-port",
        b"x-forwarded-server",
        b"x-original-host",
        b"x-host",
        b"x-http-host-override",
        # the path or URL
        b"x-forwarded-prefix",
        b"x-forwarded-path",
        b"x-forwarded-uri",
        b"x-original-url",
        b"x-original-uri",
        b"x-rewrite-url",
        b"x-envoy-original-path",
        b"x-script-name",
        # the method
        b"x-original-method",
        b"x-forwarded-method",
        # the TLS client certificate
        b"x-forwarded-client-cert",
        b"x-client-cert",
        b"x-ssl-client-cert",
        b"ssl-client-cert",
        b"x-ssl-client-verify",
        b"x-client-verify",
        b"x-ssl-client-dn",
        b"x-ssl-client-s-dn",
        b"x-arr-clientcert",
    }
)
#: The serving ASGI server sends its own (as nginx hides the upstream's by default).
SERVER_OWNED: Final = frozenset({b"date", b"server"})
#: Set by the WebSocket client library itself, or negotiated per hop.
WEBSOCKET_HANDSHAKE: Final = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
    }
)


class HeaderRules:
    """The headers of one proxy, both ways, as the module docstring describes."""

    def __init__(self, settings: ProxySettings, gate: GateSettings) -> None:
        self._origin = settings.upstream.encode()
        self._preserve_host = settings.preserve_host
        self._identity = IdentityHeaders.of_settings(gate)
        self._jwt_header = jwt_header_name(gate)
        jwt = {self._jwt_header} if self._jwt_header else set()
        self._drop = self._identity.names | jwt | FORWARDING_HEADERS | HOP_BY_HOP
        public = urlsplit(gate.base_url)
        self._proto = public.scheme.encode()
        self._public_host = public.netloc.encode()
        self._base_url = gate.base_url
        self._gate_cookie_prefix = gate.cookie_prefix + "_"
        self._addresses = ClientAddresses(gate.trusted_proxies)

    def request_headers(
        self, scope: Scope, *, websocket: bool = False
    ) -> list[tuple[bytes, bytes]]:
        """The headers to send upstream, without ``Content-Length`` (see the module docstring).

        Names are compared in lower case with ``_`` read as ``-``: an upstream behind a
        server that maps headers to ``HTTP_*`` variables cannot tell them apart."""
        raw: Iterable[tuple[bytes, bytes]] = scope["headers"]
        listed = {
            token.strip().lower().replace(b"_", b"-")
            for name, value in raw
            if name.lower() == b"connection"
            for token in value.split(b",")
        }
        peer = peer_of(scope)
        trusted = self._addresses.trusts(peer)
        out: list[tuple[bytes, bytes]] = []
        forwarded_for: list[bytes] = []
        host = self._public_host
        for key, value in raw:
            name = key.lower()
            canonical = name.replace(b"_", b"-")
            if name == b"x-forwarded-for" and trusted:  # what trusted proxies saw before
                forwarded_for.append(value)
                continue
            if canonical in self._drop or canonical in listed or canonical == b"content-length":
                continue
            if name == b"host":
                host = value
                if websocket or not self._preserve_host:
                    continue
            elif websocket and canonical in WEBSOCKET_HANDSHAKE:
                continue
            elif name == b"cookie":
                value = without_cookies(value, self._gate_cookie_prefix)
                if not value:
                    continue
            out.append((name, value))
        if peer:
            forwarded_for.append(peer.encode())
        if forwarded_for:
            out.append((b"x-forwarded-for", b", ".join(forwarded_for)))
        out.append((b"x-forwarded-proto", self._proto))
        out.append((b"x-forwarded-host", host))
        user = scope.get("user")
        if isinstance(user, SamlUser):
            out += self._identity.of(user)
            token = scope.get(JWT_SCOPE_KEY)
            if token and self._jwt_header:
                out.append((self._jwt_header, token))
        return out

    def response_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """The upstream's response headers to relay to the client (see the module docstring)."""
        pairs = [(k.lower(), v) for k, v in headers]
        listed = {t.strip().lower() for k, v in pairs if k == b"connection" for t in v.split(b",")}
        out: list[tuple[bytes, bytes]] = []
        origin = self._origin
        # RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, which must not be passed on
        # (the body is re-framed by the serving ASGI server, to a length that may differ).
        chunked = any(name == b"transfer-encoding" for name, _ in pairs)
        for name, value in pairs:
            if name in HOP_BY_HOP or name in listed or name in SERVER_OWNED:
                continue
            if chunked and name == b"content-length":
                continue
            if name == b"location" and _on_origin(value, origin):
                value = self._base_url.encode() + value[len(origin) :]
            out.append((name, value))
        return out


def _on_origin(location: bytes, origin: bytes) -> bool:
    """Whether a Location points at the upstream's own origin (not e.g. port 30001 of 3000)."""
    if not location.lower().startswith(origin):
        return False
    rest = location[len(origin) : len(origin) + 1]
    return rest in (b"", b"/", b"?", b"#")
