"""Testing an app behind the gate with signed-in people: a test IdP and a pytest plugin.

Opt-in (``import saml_gate`` does not load it). With pytest, ask for the ``saml_idp`` fixture
(registered through the ``pytest11`` entry point: no conftest needed)::

    def test_admins_only(saml_idp):
        app = create_app(**saml_idp.gate_options())
        with TestClient(app) as client:
            saml_idp.sign_in(client, email="ann@example.com", groups=["admins"])
            assert client.get("/admin").status_code == 200

Every sign-in is a real one through the gate's login and ACS: nothing is bypassed.
"""

from saml_gate.testing.answers import SignInFailed, gate_error_code
from saml_gate.testing.clients import NAVIGATION, Answer, AsyncClient, SyncClient
from saml_gate.testing.idp import IdpClock, SamlTestIdp
from saml_gate.testing.messages import AUTHN_CONTEXTS, PersonFields, ResponseFields
from saml_gate.testing.proxy import ProxyUnderTest, RecordingUpstream, UpstreamRequest

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
