"""OAuth access tokens as the test IdP's authorization server issues them (Okta's API Access
Management shape: RS256, ``iss`` the authorization server, ``aud`` the API, ``sub``, ``cid``,
``scp``, ``groups``, ``iat``, ``exp`` an hour later, a new ``jti``), and a loopback server
publishing its key set (:class:`KeyServer`), as a gate fetches a real issuer's.

The gate trusts it through ``saml_idp.gate_options()`` (``access_token_issuer`` and
``access_token_audiences``, the key set given inline); point ``access_token_keys`` at a
:class:`KeyServer`'s ``url`` to fetch it over HTTP instead.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from saml_gate.saml.keys import KeyPair
from saml_gate.testing.universal_logout import ORG_URL, IssuerKey

#: The test authorization server (Okta's ``default`` custom authorization server).
ISSUER: Final = ORG_URL + "/oauth2/default"
#: The API its tokens are for (``aud``).
AUDIENCE: Final = "api://saml-gate-test"
CLIENT_ID: Final = "0oatestclient0ci"
LIFETIME: Final = 3600


@dataclass(frozen=True)
class AccessTokenIssuer(IssuerKey):
    """Signs access tokens with ``keys`` (the test IdP's RSA key), as ``issuer``."""

    keys: KeyPair
    issuer: str = ISSUER
    audience: str = AUDIENCE

    def token(
        self,
        now: float,
        *,
        subject: str = CLIENT_ID,
        groups: Sequence[str] = (),
        scopes: Sequence[str] = (),
        claims: Mapping[str, Any] | None = None,
        header: Mapping[str, Any] | None = None,
        signing_key: Any = None,
    ) -> str:
        """A client-credentials token (``sub`` the client, unless ``subject``); ``claims``
        and ``header`` replace or add members (None removes one), ``signing_key`` signs
        instead of the issuer's key (``header={"alg": ...}`` picks its algorithm)."""
        issued = int(now)
        payload: dict[str, Any] = {
            "ver": 1,
            "jti": "AT." + secrets.token_urlsafe(16),
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "cid": CLIENT_ID,
            "scp": list(scopes),
            "groups": list(groups),
            "iat": issued,
            "exp": issued + LIFETIME,
        }
        return self.signed(payload, {"kid": self.key.kid}, claims, header, signing_key)


class KeyServer:
    """A key set over HTTP on loopback, counting fetches; ``jwks`` can change."""

    def __init__(self, jwks: str, path: str = "/v1/keys") -> None:
        self.jwks = jwks
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = owner.jwks.encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
