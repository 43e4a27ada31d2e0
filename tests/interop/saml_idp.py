"""saml-idp 1.2.1 (npm) as a permissive IdP on loopback.

It has no password step (the "login" is a profile form), signs with its own key, and trusts
whatever the request says: the ACS URL named in the AuthnRequest becomes the Response's
Destination and Recipient, and the request it answers travels through the browser as a base64
JSON form field (``_authnRequest``) that anyone can edit. Useful to prove that the SP, not the
IdP, enforces the rules. Installed by ``npm ci`` into ``saml-idp/`` beside this file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.interop.servers import LOOPBACK, free_port, start_logged, stop_process

PROJECT = Path(__file__).parent / "saml-idp"
RUN_JS = PROJECT / "node_modules" / "saml-idp" / "bin" / "run.js"
ENABLE = (
    "saml-idp is not installed: install node and npm (apt-get install nodejs npm), then"
    " npm ci --prefix tests/interop/saml-idp (.ci/run does this)"
)


def saml_idp_missing() -> str | None:
    if shutil.which("node") is None or not RUN_JS.is_file():
        return ENABLE
    return None


@dataclass
class SamlIdp:
    port: int
    process: subprocess.Popen[Any]
    log: Path

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def metadata_url(self) -> str:
        return self.url + "/metadata"

    @property
    def entity_id(self) -> str:
        return self.metadata_url

    @classmethod
    def start(cls, runtime: Path, *, audience: str, acs_url: str) -> SamlIdp:
        """``audience``/``acs_url``: the SP this IdP is configured for (the request can override
        the ACS URL, never the audience)."""
        port = free_port()
        runtime.mkdir(parents=True, exist_ok=True)
        log = runtime / "saml-idp.log"
        issuer = f"http://{LOOPBACK}:{port}/metadata"
        command = [
            "node",
            str(RUN_JS),
            "--host", LOOPBACK,
            "--port", str(port),
            "--cert", str(PROJECT / "idp-public-cert.pem"),
            "--key", str(PROJECT / "idp-private-key.pem"),
            "--issuer", issuer,
            "--acsUrl", acs_url,
            "--audience", audience,
            "--serviceProviderId", audience,
            "--configFile", str(PROJECT / "config.js"),
            "--signResponse", "true",
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FORCE_COLOR": "0"}
        process = start_logged(
            command, cwd=runtime, env=env, log=log, what="saml-idp", ready_url=issuer
        )
        return cls(port=port, process=process, log=log)

    def stop(self) -> None:
        stop_process(self.process)
