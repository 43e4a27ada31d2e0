"""Strict XML for SAML messages: parsing within limits, forbidden constructs, and the small
readers every message check uses (direct children, verbatim text, xs:dateTime instants).

Everything is refused that real IdPs never send: DTDs, entities, processing instructions,
comments, encodings other than UTF-8, and trees deeper or larger than the ``max_xml_*`` limits.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from typing import Any, Final, cast

from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ErrorCode, GateError

ID_ATTRIBUTE_NAMES: Final = frozenset({"ID", "Id", "id"})
_FRACTION: Final = re.compile(r"(\.\d{6})\d+")
_ID_LOCAL_NAME: Final = " or ".join(f"local-name()='{name}'" for name in sorted(ID_ATTRIBUTE_NAMES))
# Unprefixed ID attributes by name (cheap), namespaced ones (wsu:Id, xml:id) by local name.
_ID_VALUES: Final = "|".join(
    [
        *(f".//@{name}" for name in sorted(ID_ATTRIBUTE_NAMES)),
        f".//@*[namespace-uri()][{_ID_LOCAL_NAME}]",
    ]
)


class _ThreadTools(threading.local):
    """One parser and one set of compiled XPath expressions per thread: lxml parsers must not
    be shared between threads, and an XPath object serialises the threads that share it."""

    def __init__(self) -> None:
        self.parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            collect_ids=False,
            remove_comments=False,
            remove_pis=False,
        )
        self.id_values = etree.XPath(_ID_VALUES, smart_strings=False)
        self.over_limits: dict[int, etree.XPath] = {}

    def limits(self, max_depth: int) -> etree.XPath:
        """True when any limit of :func:`parse_strict` counted by XPath is exceeded: one
        evaluation for the four counts (``$elements``, ``$attribute``: max_attributes + 1)."""
        found = self.over_limits.get(max_depth)
        if found is None:
            found = self.over_limits[max_depth] = etree.XPath(
                "count(//*) > $elements or boolean(" + "/*" * (max_depth + 1) + ")"
                " or count(//@*) > $elements or boolean(//@*[$attribute])"
            )
        return found


_tools = _ThreadTools()


def parse_limited(data: bytes, settings: GateSettings) -> etree._Element:
    """:func:`parse_strict` with the limits of ``settings`` (``max_xml_*``)."""
    return parse_strict(
        data,
        max_depth=settings.max_xml_depth,
        max_elements=settings.max_xml_elements,
        max_attributes=settings.max_xml_attributes,
    )


def parse_strict(
    data: bytes, *, max_depth: int, max_elements: int, max_attributes: int
) -> etree._Element:
    """Parse with no DTD, no entities, no network; refuse DTDs, PIs, comments and entities,
    encodings other than UTF-8, and trees deeper or larger than the limits: ``max_depth``
    levels, ``max_elements`` elements, ``max_attributes`` attributes on one element and
    namespace declarations in scope at one element, and ``max_elements`` attributes and as many
    namespace declarations in the whole document."""
    try:
        if not data.isascii():  # ASCII is UTF-8: no need to build the decoded text
            data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GateError("malformed_response", "the document is not UTF-8") from exc
    try:
        root = etree.fromstring(data, _tools.parser)
    except etree.XMLSyntaxError as exc:
        raise GateError("malformed_response", f"not well-formed XML (line {exc.lineno})") from exc
    if root is None:
        raise GateError("malformed_response", "no document element")
    info: Any = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None or info.externalDTD is not None:
        raise GateError("forbidden_xml", "DOCTYPE declaration")
    if (info.encoding or "UTF-8").upper() != "UTF-8":
        raise GateError("malformed_response", f"the document declares encoding {info.encoding!r}")
    # Counted by libxml2's XPath engine: cheap, and before any Python loop over the tree.
    if _tools.limits(max_depth)(root, elements=max_elements, attribute=max_attributes + 1):
        _refuse_over_limits(root, max_depth, max_elements, max_attributes)
    # Every declaration spells "xmlns": with fewer in the bytes, no limit can be exceeded.
    if data.count(b"xmlns") > min(max_attributes, max_elements):
        _check_namespaces(root, max_in_scope=max_attributes, max_total=max_elements)
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        raise GateError("forbidden_xml", f"{_kind(sibling)} outside the document element")
    for node in root.iter(etree.PI, etree.Comment, etree.Entity):
        raise GateError("forbidden_xml", _kind(node))
    return root


def _refuse_over_limits(
    root: etree._Element, max_depth: int, max_elements: int, max_attributes: int
) -> None:
    """Name the first limit exceeded, checked one by one in this order."""
    if root.xpath(f"count(//*) > {max_elements}"):
        raise GateError("response_too_complex", f"more than {max_elements} elements")
    if root.xpath("boolean(" + "/*" * (max_depth + 1) + ")"):
        raise GateError("response_too_complex", f"elements nested deeper than {max_depth}")
    if root.xpath(f"count(//@*) > {max_elements}"):
        raise GateError("response_too_complex", f"more than {max_elements} attributes")
    if root.xpath(f"boolean(//@*[{max_attributes + 1}])"):  # an element's attribute N + 1
        raise GateError(
            "response_too_complex", f"an element with more than {max_attributes} attributes"
        )
    raise GateError("response_too_complex", "a limit of max_xml_* is exceeded")


def _check_namespaces(root: etree._Element, *, max_in_scope: int, max_total: int) -> None:
    """Bound the namespace declarations, which are not attributes to XPath.

    libxml2 parses thousands of declarations on one element cheaply, but canonicalization walks
    every namespace in scope at every element of the document: 5,000 declarations above 5,000
    elements cost libxmlsec 100 ms. One pass of lxml's tree walker, which hands Python the
    declarations only (and each one's end), not the elements; it stops at the first one over
    a limit. A redeclared prefix counts again: libxml2 keeps each declaration."""
    in_scope = total = 0
    for event, _ in etree.iterwalk(root, events=("start-ns", "end-ns")):
        if event == "end-ns":
            in_scope -= 1
            continue
        in_scope += 1
        total += 1
        if in_scope > max_in_scope:
            raise GateError(
                "response_too_complex",
                f"more than {max_in_scope} namespace declarations in scope at one element",
            )
        if total > max_total:
            raise GateError("response_too_complex", f"more than {max_total} namespace declarations")


def _kind(node: etree._Element) -> str:
    if isinstance(node, etree._ProcessingInstruction):
        return "processing instruction"
    if isinstance(node, etree._Comment):
        return "comment"
    if isinstance(node, etree._Entity):
        return "entity reference"
    return "node"


def check_unique_ids(root: etree._Element) -> None:
    """Refuse a document in which two attributes named like an ID (in any namespace or none)
    carry the same value, anywhere in ``root`` and its descendants."""
    values = cast(list[str], _tools.id_values(root))
    if len(set(values)) != len(values):
        raise GateError("duplicate_id", "an identifier appears more than once")


def parse_instant(value: str | None, what: str) -> datetime:
    """An xs:dateTime in UTC (shared with the logout messages' checks); GateError otherwise."""
    if not value:
        raise GateError("schema_invalid", f"{what} is missing")
    text = value.strip()
    dot = text.find(".")
    if dot >= 0 and len(text) - dot > 7:  # only a fraction of more than 6 digits has some to cut
        text = _FRACTION.sub(r"\1", text)
    if not text.endswith("Z"):  # SAML core 1.3.3: UTC, written with the Z designator
        raise GateError("schema_invalid", f"{what} is not a UTC time ending in Z")
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # not ISO 8601, or beyond datetime's range
        raise GateError("schema_invalid", f"{what} is not a valid dateTime") from exc


def children(element: etree._Element, tag: str) -> list[etree._Element]:
    """Direct children with ``tag`` (never descendants: nested copies are what XSW hides)."""
    return list(element.iterchildren(tag))


def one_child(element: etree._Element, tag: str, code: ErrorCode, what: str) -> etree._Element:
    """The only direct child with ``tag``; GateError ``code`` when there are none or several."""
    found = children(element, tag)
    if len(found) != 1:
        raise GateError(code, f"expected exactly one {what}, found {len(found)}")
    return found[0]


def verbatim_text(element: etree._Element) -> str:
    """The whole text content, exactly as sent: comments and PIs were refused, CDATA is merged
    by the parser."""
    if len(element):
        raise GateError("schema_invalid", f"{etree.QName(element).localname} has child elements")
    return element.text or ""


def uri_text(element: etree._Element) -> str:
    """The text content without surrounding layout whitespace: only for URIs compared with
    configured values (Issuer, Audience, AuthnContextClassRef), never for identity data."""
    return verbatim_text(element).strip()
