from __future__ import annotations

from collections.abc import Iterator

import pytest

from saml_gate.saml.keys import KeyPair, generate_keypair
from tests.security.acs import Canary, CorpusKeys


@pytest.fixture(scope="session")
def other_idp_keys() -> KeyPair:
    """Another key whose certificate has the test IdP's subject ("test IdP"): a cloned cert."""
    return generate_keypair("test IdP")


@pytest.fixture(scope="session")
def corpus_keys(
    idp_keys: KeyPair, sp_keys: KeyPair, attacker_keys: KeyPair, other_idp_keys: KeyPair
) -> CorpusKeys:
    return CorpusKeys(idp=idp_keys, sp=sp_keys, attacker=attacker_keys, other_idp=other_idp_keys)


@pytest.fixture(scope="session")
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()
