"""The pytest plugin of the testing kit, registered through the ``pytest11`` entry point.

Installing saml-gate is enough: pytest loads this module in every project and its ``saml_idp``
fixture needs no conftest. The kit itself is imported only when a test asks for the fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from saml_gate.testing.idp import SamlTestIdp


@pytest.fixture(scope="session")
def saml_gate_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gates' ``state_dir`` in this test session (one for all: equal options let the
    verification workers reuse what they built)."""
    return tmp_path_factory.mktemp("saml-gate")


@pytest.fixture
def saml_idp(saml_gate_state_dir: Path) -> SamlTestIdp:
    """A signing test IdP with its own keys (shared in the session), fresh for each test:
    ``saml_idp.gate_options()`` trusts it, ``saml_idp.sign_in(client, ...)`` signs in."""
    from saml_gate.testing.idp import SamlTestIdp

    return SamlTestIdp(state_dir=str(saml_gate_state_dir))
