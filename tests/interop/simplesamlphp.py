"""SimpleSAMLphp 1.19 (Debian's package) as a real, strict IdP on loopback.

Started from the project's own copy of the configuration (``simplesamlphp-config/`` here),
copied to a writable runtime folder and served by PHP's built-in server. Users: alice/alicepass
(groups admins, users) and bob/bobpass (users). The SP it trusts (entity ID, ACS, its
certificate, whether to encrypt) comes from the environment read by
``config/metadata/saml20-sp-remote.php``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.interop.servers import LOOPBACK, free_port, start_logged, stop_process

HERE = Path(__file__).parent
CONFIG = HERE / "simplesamlphp-config"
WWW = Path("/usr/share/simplesamlphp/www")
ENABLE = (
    "SimpleSAMLphp is not installed: apt-get install simplesamlphp php-xml php-mbstring"
    " (.ci/run does this)"
)
USERS = {"alice": "alicepass", "bob": "bobpass"}


def simplesamlphp_missing() -> str | None:
    """Why SimpleSAMLphp cannot run here, or None."""
    php = shutil.which("php")
    if php is None or not WWW.is_dir():
        return ENABLE
    modules = subprocess.run([php, "-m"], capture_output=True, text=True, check=False).stdout
    missing = [m for m in ("dom", "mbstring", "openssl") if m not in modules.split()]
    if missing:
        return f"PHP lacks {', '.join(missing)}: {ENABLE}"
    return None


def metadata_url_at(port: int) -> str:
    return f"http://{LOOPBACK}:{port}/saml2/idp/metadata.php"


@dataclass
class SimpleSamlPhp:
    """A running SimpleSAMLphp IdP. ``public_url`` is where browsers reach it (ends with /;
    ``{port}`` in the value given to :meth:`start` stands for the port it listens on)."""

    public_url: str
    port: int
    runtime: Path
    process: subprocess.Popen[Any]

    @property
    def entity_id(self) -> str:
        return self.public_url + "saml2/idp/metadata.php"

    @property
    def local_metadata_url(self) -> str:
        return metadata_url_at(self.port)

    def idp_initiated_url(self, sp_entity_id: str, relay_state: str) -> str:
        """Like an Okta dashboard tile: an unsolicited Response for that SP."""
        query = urlencode({"spentityid": sp_entity_id, "RelayState": relay_state})
        return self.public_url + "saml2/idp/SSOService.php?" + query

    def log_text(self) -> str:
        logs = sorted((self.runtime / "log").glob("*.log"))
        return "\n".join(p.read_text(errors="replace") for p in logs)

    @classmethod
    def start(
        cls,
        runtime: Path,
        *,
        sp_entity_id: str,
        sp_acs_url: str,
        sp_slo_url: str,
        sp_cert_file: Path | None = None,
        encrypt_assertions: bool = False,
        public_url: str | None = None,
        groups_file: Path | None = None,
    ) -> SimpleSamlPhp:
        port = free_port()
        public = (public_url or "http://127.0.0.1:{port}/").format(port=port)
        runtime.mkdir(parents=True, exist_ok=True)
        for folder in ("config", "cert"):
            shutil.copytree(CONFIG / folder, runtime / folder, dirs_exist_ok=True)
        for folder in ("log", "data", "tmp", "sessions"):
            (runtime / folder).mkdir(exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "SSP_RUNTIME": str(runtime),
            "SSP_BASEURL": public,
            "SIMPLESAMLPHP_CONFIG_DIR": str(runtime / "config"),
            "SP_ENTITY_ID": sp_entity_id,
            "SP_ACS_URL": sp_acs_url,
            "SP_SLO_URL": sp_slo_url,
        }
        if groups_file is not None:  # the groups of each response (see saml20-sp-remote.php)
            env["SP_GROUPS_FILE"] = str(groups_file)
        if sp_cert_file is not None:
            env["SP_CERT_FILE"] = str(sp_cert_file)
            if encrypt_assertions:
                env["SP_ENCRYPT_ASSERTION"] = "1"
        server_log = runtime / "log" / "php-server.log"
        process = start_logged(
            ["php", "-S", f"{LOOPBACK}:{port}", "-t", str(WWW)],
            cwd=WWW,
            env=env,
            log=server_log,
            what="SimpleSAMLphp",
            ready_url=metadata_url_at(port),
        )
        return cls(public_url=public, port=port, runtime=runtime, process=process)

    def stop(self) -> None:
        stop_process(self.process)
