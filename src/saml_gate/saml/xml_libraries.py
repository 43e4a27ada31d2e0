"""xmlsec, imported only after checking that it and lxml run on one libxml2.

xmlsec works on lxml's trees through libxml2 itself, so both must be built on the same libxml2
(major.minor). When they are not (wheels built at different times, or one of them built from
source on the system's libxml2), ``import xmlsec`` fails with "lxml & xmlsec libxml2 library
version mismatch", which names neither the versions nor the fix: the gate imports xmlsec
from here (``from saml_gate.saml.xml_libraries import xmlsec``) to say both.
"""

from __future__ import annotations

import lxml.etree

__all__ = ["XmlLibrariesMismatch", "xmlsec"]

FIX = (
    "reinstall both on one libxml2: either the wheels this saml-gate release is tested with"
    " (pip install --force-reinstall 'xmlsec>=1.3.17,<1.4' 'lxml>=6.0,<6.2'), or both built"
    " from source on the system's libxml2 (pip install --force-reinstall --no-binary"
    " lxml,xmlsec lxml xmlsec, with the libxml2 and libxmlsec1 development packages)"
)


class XmlLibrariesMismatch(ImportError):
    """lxml and xmlsec are built on different libxml2 versions (an installation problem)."""


def _version(parts: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in parts)


def mismatch(xmlsec_libxml2: tuple[int, ...] | None) -> XmlLibrariesMismatch:
    """The error for this lxml and an xmlsec on ``xmlsec_libxml2`` (None: xmlsec's import
    refused the pairing without saying which)."""
    theirs = "another libxml2" if xmlsec_libxml2 is None else f"libxml2 {_version(xmlsec_libxml2)}"
    return XmlLibrariesMismatch(
        f"saml-gate: lxml {lxml.etree.__version__} runs on libxml2"
        f" {_version(lxml.etree.LIBXML_VERSION)} but xmlsec on {theirs}; they must share one"
        f" libxml2. Fix: {FIX}"
    )


try:
    import xmlsec
except ImportError as exc:
    if "mismatch" not in str(exc):
        raise
    raise mismatch(None) from exc

if xmlsec.get_libxml_version()[:2] != lxml.etree.LIBXML_VERSION[:2]:
    raise mismatch(xmlsec.get_libxml_version())
