"""The gate's process-wide changes (libxmlsec fetches forbidden, pysaml2 quiet) are made by
``install_process_policy`` when a gate is built, never by importing ``saml_gate``."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import saml_gate.runtime.core
from saml_gate import SamlGate
from saml_gate.saml.keys import KeyPair
from tests.support import FrozenClock, gate_options, make_app, started

ROOT = Path(__file__).resolve().parent.parent

# Signs a Reference to a file outside the document (libxmlsec fetches it with its default I/O
# callbacks), then reports whether that signature still verifies: only while fetches work.
_PROBE = textwrap.dedent(
    """
    import logging, sys, tempfile
    from pathlib import Path
    import xmlsec
    from lxml import etree
    import saml_gate, saml_gate.middleware, saml_gate.runtime.core, saml_gate.runtime.workers
    import saml_gate.runtime.worker_child
    import saml_gate.saml.decrypt, saml_gate.saml.dsig, saml_gate.saml.logout
    import saml_gate.saml.response, saml_gate.saml.sp, saml_gate.saml.xml
    from saml_gate.saml.keys import generate_keypair
    from saml_gate.saml.process_policy import install_process_policy

    keys = generate_keypair("probe")
    target = Path(tempfile.mkdtemp()) / "outside.txt"
    target.write_bytes(b"not in the document")
    root = etree.fromstring(b"<root/>")
    signature = xmlsec.template.create(
        root, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256
    )
    root.append(signature)
    xmlsec.template.add_reference(
        signature, xmlsec.constants.TransformSha256, uri=target.as_uri()
    )
    signer = xmlsec.SignatureContext()
    signer.key = xmlsec.Key.from_memory(keys.key_pem, xmlsec.constants.KeyDataFormatPem)
    signer.sign(signature)

    def state():
        checker = xmlsec.SignatureContext()
        checker.key = xmlsec.Key.from_memory(
            keys.cert_pem, xmlsec.constants.KeyDataFormatCertPem
        )
        try:
            checker.verify(signature)
            fetched = "fetches"
        except xmlsec.Error:
            fetched = "no-fetch"
        return f"{fetched} {logging.getLogger('saml2').level}"

    print(state())
    install_process_policy()
    install_process_policy()
    print(state())
    """
)


def test_import_changes_nothing_and_the_policy_forbids_fetches() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    after_import, after_policy = result.stdout.split()[:2], result.stdout.split()[2:]
    assert after_import == ["fetches", "0"]  # logging.NOTSET
    assert after_policy == ["no-fetch", "50"]  # logging.CRITICAL


def test_starting_a_gate_installs_the_policy(
    idp_keys: KeyPair,
    sp_keys: KeyPair,
    clock: FrozenClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    monkeypatch.setattr(saml_gate.runtime.core, "install_process_policy", lambda: calls.append(1))
    gate = SamlGate(make_app(), **gate_options(idp_keys, sp_keys, clock, str(tmp_path)))
    assert calls == []  # building a gate changes nothing process-wide
    started(gate)
    assert calls == [1]
