"""The Response rules: what a SAML Response posted to the ACS must say to sign someone in.

The rule throughout: parse strictly (:mod:`saml_gate.saml.xml`), find the one element that will
be used, check that a signature made with a key from the IdP's metadata covers exactly that
element (:mod:`saml_gate.saml.dsig`), decrypt it if needed (:mod:`saml_gate.saml.decrypt`), and
build the result from that element alone: Status, Issuer, Destination, Recipient, times,
Audience, InResponseTo, attributes.

:meth:`ResponseVerifier.verify` is synchronous and CPU-bound: the ACS runs it in a child
process (through :mod:`saml_gate.runtime.engine`) or, with ``verify_isolation="thread"``, in a
worker thread. The replay check needs the shared store, so it is done by the caller with
:attr:`VerifiedLogin.replay_key` and :attr:`VerifiedLogin.replay_until`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.ip_addresses import parse_address
from saml_gate.saml import xmlconst as X
from saml_gate.saml.bindings import decode_post_value
from saml_gate.saml.decrypt import AssertionDecrypter
from saml_gate.saml.dsig import SignatureChecker, check_signature_placement
from saml_gate.saml.identity import check_identity_value, read_attributes
from saml_gate.saml.idp import IdpInfo
from saml_gate.saml.schema import saml_schema
from saml_gate.saml.xml import (
    check_unique_ids,
    children,
    one_child,
    parse_instant,
    parse_limited,
    uri_text,
    verbatim_text,
)


@dataclass(frozen=True)
class VerifiedLogin:
    """What a verified assertion says, built only from the element whose signature was checked."""

    name_id: str
    name_id_format: str | None
    session_index: str | None
    attributes: Mapping[str, tuple[str, ...]]
    authn_instant: datetime
    authn_context: str | None
    session_not_on_or_after: datetime | None
    issuer: str
    in_response_to: str | None
    assertion_id: str
    replay_until: float
    """Epoch seconds until which the assertion could still be accepted (for the replay cache)."""

    @property
    def replay_key(self) -> str:
        return f"assertion:{self.issuer}:{self.assertion_id}"


class ResponseVerifier:
    """Checks Responses against one IdP's metadata and this SP's settings."""

    def __init__(self, settings: GateSettings, idp: IdpInfo, sp_key_pem: bytes) -> None:
        self._settings = settings
        self._idp = idp
        self._signatures = SignatureChecker(settings, idp)
        self._schema = saml_schema()
        self._decrypter = AssertionDecrypter(settings, sp_key_pem, self._schema)
        self._identity_attributes = frozenset(
            (settings.groups_attribute, settings.email_attribute, settings.name_attribute)
        )

    # ------------------------------------------------------------------ entry point
    def verify(
        self,
        saml_response: str,
        *,
        expected_request_ids: Collection[str],
        now: float,
        client_address: str = "",
    ) -> VerifiedLogin:
        """Verify a posted SAMLResponse; raise :class:`GateError` with a stable code on refusal.

        ``client_address``: the client's address as the gate trusts it (``trusted_proxies``),
        "" when unknown; compared with the bearer confirmation's Address when
        ``check_subject_address`` is on."""
        s = self._settings
        data = decode_post_value(saml_response, s.max_response_bytes)
        root = parse_limited(data, s)
        if root.tag != X.T_RESPONSE:
            raise GateError("not_a_response", f"document element is {etree.QName(root).localname}")
        self._schema.check(root)
        check_unique_ids(root)
        self._check_status(root)
        if root.get("Version") != "2.0":
            raise GateError("schema_invalid", "Response Version is not 2.0")
        self._check_issuer(root, required=False)

        containers = [c for c in root.iter(X.T_ASSERTION, X.T_ENC_ASSERTION)]
        if len(containers) != 1 or containers[0].getparent() is not root:
            raise GateError(
                "assertion_count",
                f"{len(containers)} assertions (exactly one, as a child of Response, is accepted)",
            )
        container = containers[0]
        check_signature_placement(root, container)

        response_signed = self._signatures.verify(root)
        if response_signed:
            destination = root.get("Destination")
            if destination is None:
                raise GateError("wrong_destination", "a signed Response must carry Destination")
        if root.get("Destination") is not None and root.get("Destination") != s.acs_url:
            raise GateError(
                "wrong_destination",
                f"Destination is {root.get('Destination')!r} but this ACS is {s.acs_url!r}",
            )

        assertion = (
            self._decrypter.decrypt(container) if container.tag == X.T_ENC_ASSERTION else container
        )
        assertion_signed = self._signatures.verify(assertion)

        if not (response_signed or assertion_signed):
            raise GateError("signature_missing", "neither the Response nor the Assertion is signed")
        if s.want_response_signed and not response_signed:
            raise GateError(
                "signature_missing", "the Response is not signed (want_response_signed)"
            )
        if s.want_assertions_signed and not assertion_signed:
            raise GateError(
                "signature_missing", "the Assertion is not signed (want_assertions_signed)"
            )
        self._check_issued(root, now)
        return self._read_assertion(
            assertion,
            response_irt=root.get("InResponseTo"),
            expected_request_ids=expected_request_ids,
            now=now,
            client_address=client_address,
        )

    @staticmethod
    def _check_status(root: etree._Element) -> None:
        status = one_child(root, X.T_STATUS, "schema_invalid", "Status")
        code = one_child(status, X.T_STATUS_CODE, "schema_invalid", "StatusCode")
        value = code.get("Value")
        if value == X.STATUS_SUCCESS:
            return
        codes = [value or "?", *[c.get("Value") or "?" for c in code.iter(X.T_STATUS_CODE)][1:]]
        message = ""
        for m in children(status, X.T_STATUS_MESSAGE):
            message = (m.text or "")[:200]
        short = " / ".join(c.rsplit(":", 1)[-1] for c in codes)
        detail = f"IdP status {short}" + (f": {message!r}" if message else "")
        denied = any(c.endswith(":RequestDenied") for c in codes) or "assign" in message.lower()
        raise GateError("idp_denied" if denied else "idp_status", detail)

    def _check_issuer(self, element: etree._Element, *, required: bool) -> None:
        issuers = children(element, X.T_ISSUER)
        if not issuers:
            if required:
                raise GateError("wrong_issuer", "the Assertion has no Issuer")
            return
        issuer = issuers[0]
        fmt = issuer.get("Format")
        if fmt is not None and fmt != X.NAMEID_ENTITY:
            raise GateError("wrong_issuer", f"Issuer Format is {fmt!r}")
        value = uri_text(issuer)
        if value != self._idp.entity_id:
            raise GateError(
                "wrong_issuer",
                f"Issuer is {value!r} but the IdP metadata's entityID is {self._idp.entity_id!r}",
            )

    def _check_issued(self, element: etree._Element, now: float) -> None:
        """IssueInstant within clock_skew of now, and not older than login_timeout: an IdP
        answers a sign-in when it happens, and the browser posts the answer at once."""
        skew = self._settings.clock_skew
        what = etree.QName(element).localname
        issued = parse_instant(element.get("IssueInstant"), f"{what} IssueInstant").timestamp()
        if issued > now + skew:
            raise GateError(
                "not_yet_valid",
                f"the {what} was issued {issued - now:.0f} s in the future"
                f" (clock_skew is {skew:.0f} s): the IdP's clock is ahead of this server's",
            )
        if issued < now - self._settings.login_timeout - skew:
            raise GateError(
                "expired",
                f"the {what} was issued {now - issued:.0f} s ago, longer than login_timeout"
                f" ({self._settings.login_timeout:.0f} s) + clock_skew",
            )

    # ------------------------------------------------------------------ semantics
    def _read_assertion(
        self,
        assertion: etree._Element,
        *,
        response_irt: str | None,
        expected_request_ids: Collection[str],
        now: float,
        client_address: str,
    ) -> VerifiedLogin:
        s = self._settings
        skew = s.clock_skew
        if assertion.get("Version") != "2.0":
            raise GateError("schema_invalid", "Assertion Version is not 2.0")
        self._check_issuer(assertion, required=True)
        assertion_id = assertion.get("ID") or ""
        self._check_issued(assertion, now)

        # Subject
        subject = one_child(assertion, X.T_SUBJECT, "bad_subject", "Subject")
        name_id_el = one_child(subject, X.T_NAMEID, "bad_subject", "NameID")
        name_id = verbatim_text(name_id_el)
        if not name_id:
            raise GateError("bad_subject", "the NameID is empty")
        check_identity_value(name_id, "the NameID")
        name_id_format = name_id_el.get("Format")
        if s.name_id_format != X.NAMEID_UNSPECIFIED and name_id_format not in (
            None,
            s.name_id_format,
            X.NAMEID_UNSPECIFIED,
        ):
            raise GateError(
                "name_id_format",
                f"NameID Format is {name_id_format!r}, expected {s.name_id_format!r}",
            )
        qualifier = name_id_el.get("SPNameQualifier")
        if qualifier is not None and qualifier != s.entity_id:
            raise GateError("bad_subject", f"the NameID's SPNameQualifier is {qualifier!r}")
        confirmation_until, scd_irt = self._check_bearer(subject, now, client_address)

        # InResponseTo: the Response's and the bearer confirmation's must agree. The Web SSO
        # profile puts it on both when the Response answers an AuthnRequest, on neither when not.
        if response_irt != scd_irt:
            raise GateError("unknown_request", "InResponseTo differs inside the message")
        in_response_to = scd_irt
        if in_response_to is None:
            if not s.allow_idp_initiated:
                raise GateError("unsolicited", "the Response answers no AuthnRequest")
        elif in_response_to not in expected_request_ids:
            raise GateError(
                "unknown_request",
                "InResponseTo does not match a sign-in started in this browser",
            )

        conditions_until = self._check_conditions(assertion, now)

        # AuthnStatement
        statement = one_child(
            assertion, X.T_AUTHN_STATEMENT, "bad_authn_statement", "AuthnStatement"
        )
        authn_instant = parse_instant(statement.get("AuthnInstant"), "AuthnInstant")
        session_until_text = statement.get("SessionNotOnOrAfter")
        session_until = (
            parse_instant(session_until_text, "SessionNotOnOrAfter") if session_until_text else None
        )
        # No clock_skew here: a session must not start already past its end (session.py).
        if session_until is not None and now >= session_until.timestamp():
            raise GateError("expired", "the IdP session (SessionNotOnOrAfter) has ended")
        class_refs = list(statement.iter(X.T_AUTHN_CONTEXT_CLASS_REF))
        authn_context = uri_text(class_refs[0]) if class_refs else None

        return VerifiedLogin(
            name_id=name_id,
            name_id_format=name_id_format,
            session_index=statement.get("SessionIndex"),
            attributes=read_attributes(assertion, self._identity_attributes),
            authn_instant=authn_instant,
            authn_context=authn_context,
            session_not_on_or_after=session_until,
            issuer=self._idp.entity_id,
            in_response_to=in_response_to,
            assertion_id=assertion_id,
            replay_until=max(confirmation_until, conditions_until) + skew,
        )

    def _check_bearer(
        self, subject: etree._Element, now: float, client_address: str
    ) -> tuple[float, str | None]:
        """The first bearer confirmation that holds: (its NotOnOrAfter, its InResponseTo)."""
        skew = self._settings.clock_skew
        failure = GateError("bad_subject", "no bearer SubjectConfirmation")
        for confirmation in children(subject, X.T_SUBJECT_CONF):
            if confirmation.get("Method") != X.CM_BEARER:
                continue
            data = children(confirmation, X.T_SUBJECT_CONF_DATA)
            if len(data) != 1:
                failure = GateError("bad_subject", "bearer confirmation without one data element")
                continue
            scd = data[0]
            recipient = scd.get("Recipient")
            if recipient != self._settings.acs_url:
                failure = GateError(
                    "wrong_recipient",
                    f"Recipient is {recipient!r} but this ACS is {self._settings.acs_url!r}",
                )
                continue
            until_text = scd.get("NotOnOrAfter")
            if until_text is None:
                failure = GateError("bad_subject", "bearer confirmation without NotOnOrAfter")
                continue
            until = parse_instant(until_text, "SubjectConfirmationData NotOnOrAfter").timestamp()
            if now - skew >= until:
                failure = GateError(
                    "expired",
                    f"the bearer confirmation expired {now - until:.0f} s ago (clock_skew is"
                    f" {skew:.0f} s): a stale Response, or this server's clock is ahead",
                )
                continue
            if scd.get("NotBefore") is not None:  # forbidden for bearer (profiles 4.1.4.2)
                failure = GateError("bad_subject", "bearer confirmation with NotBefore")
                continue
            address = scd.get("Address")
            if self._settings.check_subject_address and address is not None:
                mismatch = _address_mismatch(address, client_address)
                if mismatch:
                    failure = GateError("subject_address_mismatch", mismatch)
                    continue
            return until, scd.get("InResponseTo")
        raise failure

    def _check_conditions(self, assertion: etree._Element, now: float) -> float:
        skew = self._settings.clock_skew
        conditions = one_child(assertion, X.T_CONDITIONS, "bad_conditions", "Conditions")
        not_before_text = conditions.get("NotBefore")
        not_before = (
            None
            if not_before_text is None
            else parse_instant(not_before_text, "Conditions NotBefore").timestamp()
        )
        if not_before is not None and not_before > now + skew:
            raise GateError("not_yet_valid", "Conditions NotBefore is in the future")
        until_text = conditions.get("NotOnOrAfter")
        if until_text is None:
            raise GateError("bad_conditions", "Conditions without NotOnOrAfter")
        until = parse_instant(until_text, "Conditions NotOnOrAfter").timestamp()
        if not_before is not None and not_before >= until:
            raise GateError("bad_conditions", "Conditions NotBefore is not before NotOnOrAfter")
        if now - skew >= until:
            raise GateError(
                "expired",
                f"Conditions NotOnOrAfter passed {now - until:.0f} s ago (clock_skew is"
                f" {skew:.0f} s): a stale Response, or this server's clock is ahead of the IdP's",
            )
        restrictions = 0
        for condition in conditions:
            if condition.tag == X.T_AUDIENCE_RESTRICTION:
                restrictions += 1
                audiences = [uri_text(a) for a in condition.iter(X.T_AUDIENCE)]
                if self._settings.entity_id not in audiences:
                    if any("temporary" in a for a in audiences):
                        raise GateError(
                            "audience_placeholder",
                            f"Audience is {', '.join(repr(a) for a in audiences)}",
                        )
                    raise GateError(
                        "wrong_audience",
                        f"Audience is {', '.join(repr(a) for a in audiences)} but this SP's entity"
                        f" ID is {self._settings.entity_id!r}",
                    )
            elif condition.tag not in (X.T_ONE_TIME_USE, X.T_PROXY_RESTRICTION):
                raise GateError("bad_conditions", "an unknown Condition is present")
        if restrictions == 0:
            raise GateError("bad_conditions", "no AudienceRestriction")
        return until


def _address_mismatch(address: str, client_address: str) -> str:
    """Why the bearer confirmation's Address is not the client's ("" when it is): both read
    as IP addresses (an IPv4-mapped IPv6 address is its IPv4 address)."""
    expected = parse_address(address)
    if expected is None:
        return "the bearer confirmation's Address is not an IP address"
    client = parse_address(client_address)
    if client is None:
        return "the bearer confirmation names an Address, and the client's is unknown"
    if client != expected:
        return f"the bearer confirmation's Address is {address!r}, the client is {client_address}"
    return ""
