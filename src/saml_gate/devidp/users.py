"""The users one signs in as at the development IdP: those offered, and those typed in."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from saml_gate.devidp.problems import CONTROL_RE, bad_request
from saml_gate.policy.hosts import is_number


@dataclass(frozen=True)
class DevUser:
    """A user offered on the login page."""

    email: str
    name: str
    groups: tuple[str, ...] = ()


DEFAULT_USERS: Final[tuple[DevUser, ...]] = (
    DevUser("alice@example.com", "Alice Admin", ("admins", "users")),
    DevUser("bob@example.com", "Bob User", ("users",)),
    DevUser("carol@example.com", "Carol Contractor", ("contractors",)),
)

MAX_EMAIL_CHARS: Final = 254
MAX_NAME_CHARS: Final = 256
MAX_GROUP_CHARS: Final = 64
MAX_GROUPS: Final = 50


def user_from_form(form: Mapping[str, str], users: Sequence[DevUser]) -> DevUser:
    """The user picked (``user``: an index into ``users``) or typed in (email, name, groups)."""
    choice = form.get("user")
    if choice is not None:
        if not is_number(choice) or int(choice) >= len(users):
            raise bad_request("No such user.")
        return users[int(choice)]
    email = form.get("email", "").strip()
    if not email or "@" not in email:
        raise bad_request("Give an email address (it must contain @).")
    if len(email) > MAX_EMAIL_CHARS:
        raise bad_request(f"The email address is longer than {MAX_EMAIL_CHARS} characters.")
    if CONTROL_RE.search(email) or any(c.isspace() for c in email):
        raise bad_request("The email address contains spaces or control characters.")
    name = " ".join(form.get("name", "").split()) or email
    if len(name) > MAX_NAME_CHARS or CONTROL_RE.search(name):
        raise bad_request(
            f"The display name must be at most {MAX_NAME_CHARS} printable characters."
        )
    groups: list[str] = []
    for raw in form.get("groups", "").split(","):
        group = raw.strip()
        if not group or group in groups:
            continue
        if len(group) > MAX_GROUP_CHARS or CONTROL_RE.search(group):
            raise bad_request(f"Each group must be at most {MAX_GROUP_CHARS} printable characters.")
        groups.append(group)
    if len(groups) > MAX_GROUPS:
        raise bad_request(f"At most {MAX_GROUPS} groups.")
    return DevUser(email=email, name=name, groups=tuple(groups))


def session_value(user: DevUser) -> str:
    """The IdP session cookie's value: who signed in at the development IdP (it signs anyone
    in as anyone, so the cookie needs no signature)."""
    data = json.dumps({"e": user.email, "n": user.name, "g": list(user.groups)})
    return base64.urlsafe_b64encode(data.encode()).decode()


def session_user(value: str | None) -> DevUser | None:
    """The user of an IdP session cookie, or None (absent or unreadable: no session)."""
    if not value:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(value.encode()))
        groups = tuple(str(g) for g in data["g"])
        return DevUser(email=str(data["e"]), name=str(data["n"]), groups=groups)
    except (binascii.Error, ValueError, KeyError, TypeError):
        return None
