"""The SP metadata the gate builds itself (lxml) says what pysaml2's ``entity_descriptor`` said
for the same settings: the same elements, attributes and values, for every setting it reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.saml.keys import KeyPair
from saml_gate.saml.pem_keys import SpKeys
from saml_gate.saml.sp import sp_config, sp_metadata_xml
from tests.support import BASE_URL, SECRET, idp_metadata


def _tree(xml: bytes) -> Any:
    """(tag, attributes, text, children): prefixes, indentation and attribute order aside."""

    def walk(element: Any) -> Any:
        text = (element.text or "").strip()
        return (element.tag, sorted(element.attrib.items()), text, [walk(c) for c in element])

    return walk(etree.fromstring(xml))


@pytest.mark.parametrize(
    ("sign_requests", "settings"),
    [
        (True, {}),
        (False, {"want_assertions_signed": True}),
        (True, {"want_assertions_signed": True, "want_response_signed": True}),
        (
            False,
            {
                "base_url": "https://app.example.com/portal",
                "prefix": "/sso",
                "name_id_format": "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
                "entity_id": "urn:example:sp",
            },
        ),
    ],
)
def test_the_sp_metadata_is_what_pysaml2_wrote(
    sp_keys: KeyPair, idp_keys: KeyPair, tmp_path: Path, sign_requests: bool, settings: Any
) -> None:
    from saml2.config import SPConfig
    from saml2.metadata import entity_descriptor

    gate_settings = GateSettings.load(
        environ={},
        **{
            "base_url": BASE_URL,
            "secret_key": SECRET,
            "idp_metadata": idp_metadata(idp_keys),
            **settings,
        },
    )
    key_path, cert_path = tmp_path / "sp.key.pem", tmp_path / "sp.cert.pem"
    key_path.write_bytes(sp_keys.key_pem)
    cert_path.write_bytes(sp_keys.cert_pem)
    keys = SpKeys(sp_keys.key_pem, sp_keys.cert_pem, str(key_path), str(cert_path))
    ours = sp_metadata_xml(gate_settings, keys, sign_requests)
    conf = SPConfig().load(sp_config(gate_settings, keys, sign_requests))
    theirs = str(entity_descriptor(conf)).encode()
    assert _tree(ours) == _tree(theirs)
    assert ours.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<md:EntityDescriptor")
