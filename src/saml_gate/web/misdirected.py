"""A SAMLResponse posted elsewhere than the ACS: the IdP's Single sign-on URL names another path
(Okta's set to ``/``, a public path the app answers 405 to, or a gate path such as ``/saml/sso``).

Telling one means reading the posted body, which is only done for a request nobody signed in
sent: a form POST (application/x-www-form-urlencoded, from a page) that is refused or sent to
sign in, or that a public rule serves without a live session
(:attr:`~saml_gate.web.gatekeeper.Public.unclaimed_form`). At most ``saml_form_limit`` bytes are
read; a body that is not a SAMLResponse (or longer than one can be) reaches the app unchanged,
its messages replayed as they came (:func:`peek_saml_response`).
"""

from __future__ import annotations

from collections import deque
from typing import Final

from starlette.types import Message, Receive

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.policy.hosts import is_number
from saml_gate.web.forms import posts_field
from saml_gate.web.request import RequestView, is_form

#: The most fields an IdP's form posts (SAMLResponse, RelayState and a few more).
_MAX_FIELDS: Final = 20


def posts_a_form(view: RequestView) -> bool:
    """Whether the request is a form POST, the only kind that can carry an IdP's Response."""
    return view.scope.get("method") == "POST" and is_form(view)


def may_be_misdirected(view: RequestView) -> bool:
    """Whether the request looks like an IdP's misdirected Response: a form POST from a page,
    not an API call (whose body is never read)."""
    return not view.wants_json and posts_a_form(view)


async def peek_saml_response(
    view: RequestView, receive: Receive, *, limit: int
) -> tuple[bool, Receive]:
    """(whether the body is a form with a SAMLResponse, a ``receive`` that replays the body).

    Reads at most ``limit`` bytes (and nothing when Content-Length says more): a longer body is
    no SAMLResponse this gate would take. The returned ``receive`` gives the messages read, as
    they came, then the rest from the client: the app reads the same bytes it would have."""
    if not posts_a_form(view):
        return False, receive
    declared = view.headers.get("content-length")
    if declared is not None and is_number(declared) and int(declared) > limit:
        return False, receive
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":  # the client went away
            return False, _replaying(read, receive)
        size += len(message.get("body", b""))
        if size > limit:
            return False, _replaying(read, receive)
        if not message.get("more_body", False):
            break
    body = b"".join(message.get("body", b"") for message in read)
    found = posts_field(body, "SAMLResponse", max_fields=_MAX_FIELDS)
    return found, _replaying(read, receive)


def wrong_acs(view: RequestView, settings: GateSettings) -> GateError:
    """The refusal of a SAMLResponse posted elsewhere than the ACS; the log line names it."""
    return GateError(
        "wrong_acs_url",
        f"a SAMLResponse was posted to {view.scope['path']!r}; the Single sign-on URL (ACS)"
        f" is {settings.acs_url}",
    )


def _replaying(read: list[Message], receive: Receive) -> Receive:
    """``receive`` with the messages already read given first, unchanged."""
    pending = deque(read)

    async def replay() -> Message:
        return pending.popleft() if pending else await receive()

    return replay
