"""The request-side suite's servers: started on first use, stopped after the module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from saml_gate.saml.keys import KeyPair
from tests.request_side.targets import Lab


@pytest.fixture(scope="module")
def lab(
    idp_keys: KeyPair, sp_keys: KeyPair, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Lab]:
    started = Lab(idp_keys, sp_keys, tmp_path_factory.mktemp("request-side"))
    try:
        yield started
    finally:
        started.stop()
