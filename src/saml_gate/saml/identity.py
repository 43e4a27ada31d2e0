"""Signed identity data, read verbatim: the NameID and the attribute values a session is built
from, refused (never trimmed or normalised) when they could pass for another value."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping
from types import MappingProxyType

from lxml import etree

from saml_gate.errors import GateError
from saml_gate.saml import xmlconst as X
from saml_gate.saml.xml import children


def check_identity_value(value: str, what: str) -> None:
    """Refuse a signed identity value that could pass for another one: leading or trailing
    whitespace (any Unicode whitespace), or a control (Cc) or format (Cf: zero-width, bidi,
    BOM) character anywhere. Such a value is refused, never trimmed or normalised: an account
    ``admin `` must not become ``admin``."""
    if value != value.strip():
        raise GateError("identity_not_verbatim", f"{what} has leading or trailing whitespace")
    if value.isprintable():  # the common case, in C: nothing of categories C or Z but " "
        return
    for position, char in enumerate(value):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf"):
            raise GateError(
                "identity_not_verbatim",
                f"{what} has U+{ord(char):04X} ({category}) at position {position}",
            )


def read_attributes(
    assertion: etree._Element, identity: Collection[str]
) -> Mapping[str, tuple[str, ...]]:
    """Every attribute's values, verbatim; those of the ``identity`` attributes checked."""
    collected: dict[str, list[str]] = {}
    for statement in children(assertion, X.T_ATTRIBUTE_STATEMENT):
        for attribute in children(statement, X.T_ATTRIBUTE):
            name = attribute.get("Name") or ""
            if name in collected:  # merging or choosing could grant what was not meant
                raise GateError("duplicate_attribute", f"attribute {name!r} appears twice")
            values = [_value_text(v) for v in children(attribute, X.T_ATTRIBUTE_VALUE)]
            if name in identity:
                for value in values:
                    check_identity_value(value, f"a value of the {name!r} attribute")
            collected[name] = values
    return MappingProxyType({k: tuple(v) for k, v in collected.items()})


def _value_text(value: etree._Element) -> str:
    """An AttributeValue's text content, verbatim (nothing trimmed: it is signed data)."""
    if not len(value):  # the common case: text only
        return value.text or ""
    return "".join(str(t) for t in value.itertext())
