"""What the gate changes in its process for the SAML libraries, done explicitly, never at import.

:func:`install_process_policy` runs when a gate is built (``GateCore``) and when a verification
child starts (``saml_gate.runtime.worker_child.serve``). Importing ``saml_gate`` changes nothing
process-wide.
"""

from __future__ import annotations

import logging
import threading

from saml_gate.saml.xml_libraries import xmlsec

_lock = threading.Lock()
_xmlsec_fetches_forbidden = False


def install_process_policy() -> None:
    """Forbid libxmlsec every fetch and quiet pysaml2's logging; idempotent."""
    forbid_xmlsec_fetches()
    # pysaml2 logs whole documents at DEBUG and error contexts at higher levels.
    logging.getLogger("saml2").setLevel(logging.CRITICAL)


def forbid_xmlsec_fetches() -> None:
    """Remove libxmlsec's I/O callbacks (file, HTTP, FTP), once per process: a Reference,
    RetrievalMethod or KeyInfo URI can then only name the same document.

    Also called by every class that hands XML to libxmlsec, before its first use, so that a
    verifier built without a gate (tests, benchmarks, a library user) is never weaker.
    """
    global _xmlsec_fetches_forbidden
    with _lock:
        if not _xmlsec_fetches_forbidden:
            xmlsec.cleanup_callbacks()
            _xmlsec_fetches_forbidden = True
