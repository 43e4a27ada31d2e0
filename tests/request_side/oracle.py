"""The policy under test, as given to every gate, and the oracle's own reading of it.

:data:`GATE_POLICY` is what the gates are configured with. :func:`requirement` is written
independently of the gate's code: it says what the policy demands for the resource a target
*reports it served* (its canonical path and the method it acted on), so that a gate which
matched its rules against another reading of the request is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from saml_gate import Rule
from saml_gate.testing.access_tokens import AUDIENCE, CLIENT_ID, ISSUER

PUBLIC_PATHS: Final = ("/static/", "/health")
#: An app of its own (a host of ALLOWED_HOSTS' wildcard) for admins only: what host confusion
#: aims at (tests.request_side.cases_hosts).
ADMINS_HOST: Final = "admins.apps.example"
RULES: Final = (
    Rule("/", host=ADMINS_HOST, groups=["admins"]),
    Rule("/admin/", groups=["admins"]),
    Rule("/api/", methods=["POST", "PUT", "DELETE", "PATCH"], groups=["editors"]),
    Rule(re.compile(r"/reports/\d+"), groups=["finance"]),
    # POST is fine for everyone signed in, DELETE is not: what method overrides aim at.
    Rule("/docs/", methods=["DELETE"], groups=["admins"]),
    # A path inside the Starlette Mount("/sub", ...): rules see the site's path, not the mount's.
    Rule("/sub/admin/", groups=["admins"]),
    # A public form (POST only); every other method needs admins, even one no rule names: what
    # a _method in a POST's body aims at.
    Rule("/forms/", methods=["POST"], public=True),
    Rule("/forms/", groups=["admins"]),
    # Machine access: deployers, with a session or a bearer token; everything else is for
    # sessions only (the default).
    Rule("/machine/", accept=["session", "token"], groups=["deployers"]),
)
#: Hosts a sign-in may return to besides the target's own (tests.request_side.cases_return_to).
ALLOWED_HOSTS: Final = ("allowed.example", "*.apps.example")
#: The test authorization server whose access tokens the gates trust (the test IdP's key).
ACCESS_TOKENS: Final[dict[str, Any]] = {
    "access_token_issuer": ISSUER,
    "access_token_audiences": [AUDIENCE],
}
GATE_POLICY: Final[dict[str, Any]] = {
    "public_paths": list(PUBLIC_PATHS),
    "access_rules": RULES,
    "allowed_hosts": list(ALLOWED_HOSTS),
}
"""Gate options shared by every target (the test process and the Django server process)."""


@dataclass(frozen=True)
class Principal:
    name: str
    name_id: str
    groups: tuple[str, ...]
    token: bool = False
    """A service with an IdP access token (``Ctx.token``), not a person with a session."""

    @property
    def identity(self) -> dict[str, str]:
        """What the proxy must tell the upstream about this principal (and nothing else): a
        service has no email."""
        email = {} if self.token else {"x-forwarded-email": self.name_id}
        return {
            "x-forwarded-user": self.name_id,
            **email,
            "x-forwarded-groups": ",".join(self.groups),
        }


PRINCIPALS: Final = {
    "users": Principal("users", "uma@example.com", ("users",)),
    "admins": Principal("admins", "ada@example.com", ("admins", "users")),
    "editors": Principal("editors", "eddie@example.com", ("editors", "users")),
    "ci": Principal("ci", CLIENT_ID, ("deployers",), token=True),
    "ci-users": Principal("ci-users", CLIENT_ID, ("users",), token=True),
}
#: Credentials a request may carry that must count for nothing: a session cookie minted by
#: another gate configuration (same secret, other base_url or entity_id).
WORTHLESS: Final = frozenset({"foreign-base", "foreign-entity"})

WRITES: Final = frozenset({"POST", "PUT", "DELETE", "PATCH"})
_REPORT: Final = re.compile(r"/reports/[0-9]+")


@dataclass(frozen=True)
class Requirement:
    """None of the fields set: any signed-in person. ``public``: anyone. ``tokens``: a bearer
    token may prove who calls (else only a session)."""

    public: bool = False
    groups: frozenset[str] = frozenset()
    tokens: bool = False

    def __str__(self) -> str:
        if self.public:
            return "public"
        return "groups " + "|".join(sorted(self.groups)) if self.groups else "signed in"


def _under(path: str, prefix: str) -> bool:
    """``prefix`` ends with '/': that folder and the folder itself (``/admin`` for ``/admin/``)."""
    return path == prefix[:-1] or path.startswith(prefix)


def names_admins_host(host: str) -> bool:
    """Whether some server could take ``host`` for :data:`ADMINS_HOST`: in any case, on any
    port, with trailing dots (one DNS name to a resolver)."""
    name = host.strip().lower()
    if not name.startswith("["):
        name = name.rsplit(":", 1)[0] if ":" in name else name
    return name.rstrip(".") == ADMINS_HOST


def requirement(path: str, method: str, hosts: Iterable[str] = ()) -> Requirement:
    """What the policy demands for ``method`` on the resource at ``path`` (first match wins)
    when any reading of the request's host (``hosts``: its Host lines and an absolute-form
    target's authority) may be :data:`ADMINS_HOST`.

    Methods compare upper-cased: ``post`` is a POST to every framework that upper-cases it
    (Django, Tomcat, Express), which is why the gate must refuse what it cannot match."""
    method = method.upper()
    if _under(path, "/static/") or path == "/health":
        return Requirement(public=True)
    if any(names_admins_host(host) for host in hosts):
        return Requirement(groups=frozenset({"admins"}))
    if _under(path, "/admin/"):
        return Requirement(groups=frozenset({"admins"}))
    if _under(path, "/api/") and method in WRITES:
        return Requirement(groups=frozenset({"editors"}))
    if _REPORT.fullmatch(path):
        return Requirement(groups=frozenset({"finance"}))
    if _under(path, "/docs/") and method == "DELETE":
        return Requirement(groups=frozenset({"admins"}))
    if _under(path, "/sub/admin/"):
        return Requirement(groups=frozenset({"admins"}))
    if _under(path, "/forms/"):
        return Requirement(public=True) if method == "POST" else Requirement(frozenset({"admins"}))
    if _under(path, "/machine/"):
        return Requirement(groups=frozenset({"deployers"}), tokens=True)
    return Requirement()


def held_groups(who: Iterable[str], need: Requirement) -> frozenset[str] | None:
    """The groups the requester really holds where ``need`` applies (None: not signed in).

    A request may carry several credentials (cookie tossing); the requester holds whatever any
    valid one grants. Worthless credentials grant nothing; a token grants nothing where the
    rule takes no token."""
    valid = [
        PRINCIPALS[w]
        for w in who
        if w not in WORTHLESS and (need.tokens or not PRINCIPALS[w].token)
    ]
    if not valid:
        return None
    return frozenset(g for p in valid for g in p.groups)


def satisfies(held: frozenset[str] | None, need: Requirement) -> bool:
    if need.public:
        return True
    if held is None:
        return False
    return not need.groups or bool(held & need.groups)
