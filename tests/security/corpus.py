"""The attack corpus: every case of saml-attack-catalogue.md that applies to the HTTP-POST binding.

A :class:`Case` is named after its catalogue number (``23-xsw1-bs`` is case 23, XSW1, against a
both-signed golden). It builds its message from a :class:`~tests.security.forge.Context` (keys,
the request ID it answers, the frozen "now"), says which gate settings it runs under, and what
the gate must do: refuse with one of ``codes`` (the default), or, for the few cases where the
catalogue allows it, accept with the whole signed NameID. Positive controls (outcome
``accept``) use the same type.

The cases live in the ``cases_*`` modules, one per catalogue section; :mod:`.catalogue`
collects them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.security.forge import Context, Mode

Outcome = Literal["refuse", "accept", "full_name_id", "verbatim_name_id"]
MetadataKind = Literal["default", "two-idps", "encryption-only"]
OTHER_IDP_ENTITY_ID = "http://www.okta.com/exkOTHERAPP000000002"


@dataclass(frozen=True)
class FormValue:
    """A SAMLResponse form value sent exactly as given (not the base64 of an XML document)."""

    value: str


Payload = bytes | FormValue
Build = Callable[[Context], Payload]


def form_value(payload: Payload) -> str:
    if isinstance(payload, FormValue):
        return payload.value
    return base64.b64encode(payload).decode()


@dataclass(frozen=True)
class Policy:
    """Gate settings a case runs under (beyond the defaults), mirrored in the oracles."""

    want_response_signed: bool = False
    want_assertions_signed: bool = False
    allow_sha1: bool = False
    allow_idp_initiated: bool = False
    metadata: MetadataKind = "default"

    def gate_settings(self) -> dict[str, Any]:
        return {
            "want_response_signed": self.want_response_signed,
            "want_assertions_signed": self.want_assertions_signed,
            "allow_sha1": self.allow_sha1,
            "allow_idp_initiated": self.allow_idp_initiated,
        }

    def with_mode(self, mode: Mode | None) -> Policy:
        """The strict policy for a golden signed as ``mode`` (what the oracles are given)."""
        if mode is None:
            return self
        return Policy(
            want_response_signed=self.want_response_signed or mode.signs_response,
            want_assertions_signed=self.want_assertions_signed or mode.signs_assertion,
            allow_sha1=self.allow_sha1,
            allow_idp_initiated=self.allow_idp_initiated,
            metadata=self.metadata,
        )


@dataclass(frozen=True)
class Transport:
    """How the ACS receives the message, for the binding cases (these run at the ACS only)."""

    method: str = "POST"
    relay_state: str | None = None
    """None: the RelayState the gate issued (solicited) or none (unsolicited)."""
    content_type: str = "application/x-www-form-urlencoded"
    raw_form: Callable[[str], str] | None = None
    """Builds the urlencoded body from the SAMLResponse value, instead of the usual form."""
    other_browser: bool = False
    """Post from a second browser that started its own sign-in."""
    post_twice: bool = False
    """Post the same message twice; the second answer is the one judged."""
    keep_pending: bool = False
    """Before the second post, give the browser its pending-login cookie back."""
    in_query: bool = False
    """Send SAMLResponse in the URL's query string (the form carries only RelayState)."""

    @property
    def acs_only(self) -> bool:
        return (
            self.method != "POST"
            or self.relay_state is not None
            or self.raw_form is not None
            or self.content_type != Transport.content_type
            or self.other_browser
            or self.keep_pending
            or self.in_query
        )


@dataclass(frozen=True)
class Case:
    id: str
    number: str
    """Catalogue number ("23", or "A8" for the metadata note)."""
    title: str
    build: Callable[[Context], Payload]
    codes: tuple[str, ...] = ()
    """Acceptable gate error codes under ``policy`` (the gate's defaults otherwise)."""
    mode: Mode | None = None
    """The golden the case derives from; the oracles are configured to accept that golden."""
    policy: Policy = field(default_factory=Policy)
    outcome: Outcome = "refuse"
    name_id: str | None = None
    """For the accepting outcomes: the NameID the session must carry."""
    transport: Transport = field(default_factory=Transport)
    unsolicited: bool = False
    """The message answers no AuthnRequest (no pending login is started for it)."""
    network: bool = False
    """The message names the loopback canary; nothing may connect to it."""

    @property
    def expects_refusal(self) -> bool:
        return self.outcome == "refuse"


class Registry:
    """Collects the cases of one catalogue section."""

    def __init__(self) -> None:
        self.cases: list[Case] = []

    def add(self, number: str, slug: str, title: str, **kwargs: Any) -> Callable[..., Any]:
        def decorate(build: Callable[[Context], Payload]) -> Callable[[Context], Payload]:
            self.cases.append(Case(f"{number}-{slug}", number, title, build, **kwargs))
            return build

        return decorate

    def case(
        self,
        number: str,
        slug: str,
        title: str,
        build: Callable[[Context], Payload],
        **kwargs: Any,
    ) -> None:
        self.cases.append(Case(f"{number}-{slug}", number, title, build, **kwargs))
