"""Fixtures for tests against real IdPs: SimpleSAMLphp and saml-idp, with the gate under uvicorn.

Each test starts its own IdP and gate on free loopback ports (about a quarter of a second each),
so the IdP's configuration can follow the test's: which SP certificate it knows, whether it
encrypts. Everything started is stopped at the end of the test.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from saml_gate.saml.keys import KeyPair
from tests.interop.gate_server import GateServer, start_gate
from tests.interop.saml_idp import SamlIdp, saml_idp_missing
from tests.interop.servers import bound_socket
from tests.interop.simplesamlphp import SimpleSamlPhp, simplesamlphp_missing

_counter = itertools.count()


@pytest.fixture
def servers() -> Iterator[ExitStack]:
    """Everything a test starts, stopped in reverse order when it ends."""
    with ExitStack() as stack:
        yield stack


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as c:
        yield c


@pytest.fixture
def need_simplesamlphp() -> None:
    reason = simplesamlphp_missing()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def need_saml_idp() -> None:
    reason = saml_idp_missing()
    if reason:
        pytest.skip(reason)


SspGate = Callable[..., tuple[SimpleSamlPhp, GateServer]]


@pytest.fixture
def ssp_gate(
    need_simplesamlphp: None, servers: ExitStack, tmp_path: Path, sp_keys: KeyPair
) -> SspGate:
    """``make(idp_knows_sp_cert=False, encrypt=False, gate_keys=sp_keys, edit_metadata=str,
    groups_file=None, **gate_settings)``: a SimpleSAMLphp IdP that trusts a gate on
    http://127.0.0.1:PORT, and that gate (given the IdP's metadata through ``edit_metadata``;
    ``groups_file``: JSON groups by user, read at every response)."""

    def make(
        *,
        idp_knows_sp_cert: bool = False,
        encrypt: bool = False,
        gate_keys: KeyPair | None = None,
        edit_metadata: Callable[[str], str] = str,
        groups_file: Path | None = None,
        **settings: Any,
    ) -> tuple[SimpleSamlPhp, GateServer]:
        n = next(_counter)
        sock = bound_socket()
        servers.callback(sock.close)
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        cert_file = None
        if idp_knows_sp_cert:
            cert_file = tmp_path / f"sp-cert-{n}.pem"
            cert_file.write_bytes(sp_keys.cert_pem)
        idp = SimpleSamlPhp.start(
            tmp_path / f"ssp-{n}",
            sp_entity_id=base_url + "/saml/metadata",
            sp_acs_url=base_url + "/saml/acs",
            sp_slo_url=base_url + "/saml/slo",
            sp_cert_file=cert_file,
            encrypt_assertions=encrypt,
            groups_file=groups_file,
        )
        servers.callback(idp.stop)
        gate = start_gate(
            sock,
            base_url=base_url,
            idp_metadata=edit_metadata(httpx.get(idp.local_metadata_url).text),
            sp_keys=gate_keys or sp_keys,
            state_dir=tmp_path / f"gate-{n}",
            **settings,
        )
        servers.callback(gate.stop)
        return idp, gate

    return make


SamlIdpGate = Callable[..., tuple[SamlIdp, GateServer]]


@pytest.fixture
def saml_idp_gate(
    need_saml_idp: None, servers: ExitStack, tmp_path: Path, sp_keys: KeyPair
) -> SamlIdpGate:
    """``make(audience=None, **gate_settings)``: saml-idp configured for a gate on
    http://127.0.0.1:PORT (or for another ``audience``), and that gate."""

    def make(*, audience: str | None = None, **settings: Any) -> tuple[SamlIdp, GateServer]:
        n = next(_counter)
        sock = bound_socket()
        servers.callback(sock.close)
        base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        idp = SamlIdp.start(
            tmp_path / f"saml-idp-{n}",
            audience=audience or base_url + "/saml/metadata",
            acs_url=base_url + "/saml/acs",
        )
        servers.callback(idp.stop)
        gate = start_gate(
            sock,
            base_url=base_url,
            idp_metadata=httpx.get(idp.metadata_url).text,
            sp_keys=sp_keys,
            state_dir=tmp_path / f"gate-{n}",
            **settings,
        )
        servers.callback(gate.stop)
        return idp, gate

    return make
