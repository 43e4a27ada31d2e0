"""The embedded development IdP: signs Okta-shaped SAML Responses on a developer's laptop.

Also what the test suite uses to mint Responses. Loopback only; never for production.
"""

from saml_gate.devidp.app import DEFAULT_ENTITY_ID, DevIdP
from saml_gate.devidp.metadata import idp_metadata_xml
from saml_gate.devidp.response import ResponseSpec, build_response, issue_response
from saml_gate.devidp.signing import encrypt_assertion, sign_element
from saml_gate.devidp.users import DEFAULT_USERS, DevUser
from saml_gate.saml.keys import KeyPair, generate_keypair, load_or_create_keypair

__all__ = [
    "DEFAULT_ENTITY_ID",
    "DEFAULT_USERS",
    "DevIdP",
    "DevUser",
    "KeyPair",
    "ResponseSpec",
    "build_response",
    "encrypt_assertion",
    "generate_keypair",
    "idp_metadata_xml",
    "issue_response",
    "load_or_create_keypair",
    "sign_element",
]
