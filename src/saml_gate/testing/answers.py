"""Reading the gate's answers as the test IdP and the browser do: its error codes, and the
AuthnRequest or LogoutRequest it sends the browser to the IdP with."""

from __future__ import annotations

import base64
import html
import json
import re
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from saml_gate.saml import xmlconst as X
from saml_gate.testing.clients import Answer


class SignInFailed(AssertionError):
    """The gate did not sign the person in; ``response`` is its answer, ``error_code`` its code.

    An AssertionError, so pytest shows it as a failed expectation, with the gate's reason.
    """

    def __init__(self, step: str, response: Answer) -> None:
        self.response = response
        self.error_code = gate_error_code(response)
        reason = f"error code {self.error_code!r}" if self.error_code else "no error code"
        super().__init__(f"{step}: the gate answered {response.status_code} ({reason})")


_HTML_CODE = re.compile(r"Error code: <code>([^<]+)</code>")


def gate_error_code(response: Answer) -> str | None:
    """The gate's error code in an error page or JSON error body (``"expired"``...), or None."""
    if response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(response.text)
        except ValueError:
            return None
        found = body.get("error") if isinstance(body, dict) else None
        if isinstance(found, dict):  # FastAPI's HTTPException wraps it in "detail"
            found = found.get("error")
        return found if isinstance(found, str) else None
    match = _HTML_CODE.search(response.text)
    return html.unescape(match.group(1)) if match else None


def redirected_message(answer: Answer, step: str) -> tuple[etree._Element, str | None]:
    """The SAMLRequest the gate sends the browser to the IdP with (HTTP-Redirect binding) and
    its RelayState; :class:`SignInFailed` when ``answer`` is not such a redirect."""
    query = parse_qs(urlsplit(answer.headers.get("location", "")).query)
    if answer.status_code not in (302, 303) or "SAMLRequest" not in query:
        raise SignInFailed(step, answer)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return etree.fromstring(xml), query.get("RelayState", [None])[0]


@dataclass(frozen=True)
class AuthnRequestSeen:
    """What the test IdP reads from the gate's AuthnRequest (HTTP-Redirect binding)."""

    id: str
    acs_url: str
    sp_entity_id: str
    relay_state: str | None
    force_authn: bool
    is_passive: bool = False

    @classmethod
    def from_redirect(cls, answer: Answer) -> AuthnRequestSeen:
        """Read the request from the gate's 303 to the IdP; SignInFailed for any other answer."""
        root, relay_state = redirected_message(answer, "starting the sign-in")
        issuer = root.findtext(f"{{{X.NS_SAML}}}Issuer") or ""
        return cls(
            id=root.get("ID") or "",
            acs_url=root.get("AssertionConsumerServiceURL") or "",
            sp_entity_id=issuer.strip(),
            relay_state=relay_state,
            force_authn=root.get("ForceAuthn") == "true",
            is_passive=root.get("IsPassive") == "true",
        )
