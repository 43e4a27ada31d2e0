"""The sites a browser test visits: the app behind the gate and the IdP, each on its own site.

Shaped like the README's walkthrough: the app at https://acme-gate.example through the
ngrok-like proxy (like https://acme.ngrok.app), SimpleSAMLphp at https://login.idp-test.example
through another (like https://acme.okta.com). Chromium maps both names to the proxies' loopback
ports with --host-resolver-rules, so the IdP's POST to the ACS is cross-site, exactly as
Okta's is. For local development the app is at http://localhost:PORT instead.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from saml_gate.saml.keys import KeyPair
from tests.interop.gate_server import GateServer, start_gate
from tests.interop.ngrok_proxy import open_tunnel
from tests.interop.servers import bound_socket
from tests.interop.simplesamlphp import SimpleSamlPhp
from tests.interop.tls import make_tls_files

APP_HOST = "acme-gate.example"
IDP_HOST = "login.idp-test.example"

AppSite = Literal["tunnel", "localhost"]
IdpSite = Literal["other site", "localhost"]


@dataclass
class Sites:
    app_url: str
    idp: SimpleSamlPhp
    gate: GateServer
    resolver_rules: list[str] = field(default_factory=list)
    trusted_spki: str = ""

    @property
    def acs_url(self) -> str:
        return self.gate.acs_url


def start_sites(
    servers: ExitStack,
    tmp_path: Path,
    sp_keys: KeyPair,
    *,
    app: AppSite,
    idp: IdpSite,
    **gate_settings: Any,
) -> Sites:
    """Start the IdP, the gate and the proxies they need; ``servers`` stops them all."""
    tls = make_tls_files(tmp_path / "tls", [APP_HOST, IDP_HOST])
    sock = bound_socket()
    servers.callback(sock.close)
    app_url = (
        "https://" + APP_HOST if app == "tunnel" else f"http://localhost:{sock.getsockname()[1]}"
    )
    ssp = SimpleSamlPhp.start(
        tmp_path / "ssp",
        sp_entity_id=app_url + "/saml/metadata",
        sp_acs_url=app_url + "/saml/acs",
        sp_slo_url=app_url + "/saml/slo",
        public_url=f"https://{IDP_HOST}/" if idp == "other site" else "http://localhost:{port}/",
    )
    servers.callback(ssp.stop)
    gate = start_gate(
        sock,
        base_url=app_url,
        idp_metadata=httpx.get(ssp.local_metadata_url).text,
        sp_keys=sp_keys,
        state_dir=tmp_path / "gate",
        **gate_settings,
    )
    servers.callback(gate.stop)
    sites = Sites(app_url=app_url, idp=ssp, gate=gate, trusted_spki=tls.spki_sha256)
    if app == "tunnel":
        proxy = open_tunnel(servers, APP_HOST, gate.local_url, tls)
        sites.resolver_rules.append(f"MAP {APP_HOST}:443 127.0.0.1:{proxy.port}")
    if idp == "other site":
        proxy = open_tunnel(servers, IDP_HOST, f"http://127.0.0.1:{ssp.port}", tls)
        sites.resolver_rules.append(f"MAP {IDP_HOST}:443 127.0.0.1:{proxy.port}")
    return sites
