"""Testing an app behind the gate with signed-in people: a test IdP and a pytest plugin.

Opt-in (``import saml_gate`` does not load it). With pytest, ask for the ``saml_idp`` fixture
(registered through the ``pytest11`` entry point: no conftest needed)::

    def test_admins_only(saml_idp):
        app = create_app(**saml_idp.gate_options())
        with TestClient(app) as client:
            saml_idp.sign_in(client, email="ann@example.com", groups=["admins"])
            assert client.get("/admin").status_code == 200

Every sign-in is a real one through the gate's login and ACS: nothing is bypassed.

The names below are imported on first use (PEP 562): pytest imports the plugin
(``saml_gate.testing.plugin``), and so this package, in every test run of every project that
installed saml-gate, where it must load none of the kit (lxml, xmlsec, httpx, cryptography).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saml_gate import lazy_exports

if TYPE_CHECKING:
    from saml_gate.testing.answers import SignInFailed, gate_error_code
    from saml_gate.testing.clients import NAVIGATION, Answer, AsyncClient, SyncClient
    from saml_gate.testing.idp import IdpClock, SamlTestIdp
    from saml_gate.testing.messages import AUTHN_CONTEXTS, PersonFields, ResponseFields
    from saml_gate.testing.proxy import ProxyUnderTest, RecordingUpstream, UpstreamRequest

#: Each public name and the module that defines it.
_EXPORTS = {
    "AUTHN_CONTEXTS": "saml_gate.testing.messages",
    "NAVIGATION": "saml_gate.testing.clients",
    "Answer": "saml_gate.testing.clients",
    "AsyncClient": "saml_gate.testing.clients",
    "IdpClock": "saml_gate.testing.idp",
    "PersonFields": "saml_gate.testing.messages",
    "ProxyUnderTest": "saml_gate.testing.proxy",
    "RecordingUpstream": "saml_gate.testing.proxy",
    "ResponseFields": "saml_gate.testing.messages",
    "SamlTestIdp": "saml_gate.testing.idp",
    "SignInFailed": "saml_gate.testing.answers",
    "SyncClient": "saml_gate.testing.clients",
    "UpstreamRequest": "saml_gate.testing.proxy",
    "gate_error_code": "saml_gate.testing.answers",
}

__all__ = [
    "AUTHN_CONTEXTS",
    "NAVIGATION",
    "Answer",
    "AsyncClient",
    "IdpClock",
    "PersonFields",
    "ProxyUnderTest",
    "RecordingUpstream",
    "ResponseFields",
    "SamlTestIdp",
    "SignInFailed",
    "SyncClient",
    "UpstreamRequest",
    "gate_error_code",
]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
