"""Pending sign-ins: which AuthnRequest this browser sent, and where to return afterwards.

Nothing is stored on the server. Each started sign-in sets a short-lived signed cookie holding
a random key, the AuthnRequest ID and the return path; the RelayState sent through the IdP is a
signed, expiring token carrying that key (small, as the SAML bindings limit RelayState to 80
bytes). At the ACS, the Response's InResponseTo must be one of the request IDs held by this
browser's cookies, and the RelayState must carry the key stored next to that ID, so a Response
obtained for someone else's request, or for another sign-in of this browser, is refused. The
cookies are Path-scoped to the ACS and, on https, SameSite=None so that they survive the IdP's
cross-site POST (on http loopback each also has a ``.lax`` twin: see cookies.py).

A browser holds at most five of them, so the Cookie header at the ACS stays small
however many pages start a sign-in. They are named by slot, not by key: ``<prefix>_req_0`` to
``<prefix>_req_3`` take turns (a new sign-in overwrites the slot of the oldest of the last four
and the browser keeps the newest four, enough for a few tabs signing in at once), and
``<prefix>_req_L`` holds the newest sign-in whose return path is long (more than
``SHORT_PATH_BYTES``; up to ``MAX_PATH_BYTES``), so that four long paths cannot add up to more
than a proxy accepts. The pending cookies are not sent to the page that starts a sign-in, so the
turn is kept in a tiny cookie on ``Path=/`` (``<prefix>_reqslot``, the next slot); without it
(first sign-in, cookie expired) the slot is random. The slot is the first character of the key,
so the RelayState also names it. Sign-ins started at the same instant by one browser (a restored
session reopening several tabs) all read the same turn and share a slot: the one whose answer
the browser stores last keeps it, the others get ``unknown_request`` and a reload signs them in.

So the pending cookies a browser sends to the ACS, after any number of visits, take at most
about 4.6 KB on https (9.2 KB on http loopback, with the twins) with the longest random URLs
(5.4 KB in theory, for incompressible ones), under nginx's 8 KB default on https; with ordinary
paths, 0.6 KB (1.2 KB). They used to add one cookie per visit (200 visits: 20 KB, 40 KB).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from itsdangerous import BadSignature, SignatureExpired

from saml_gate.config.settings import GateSettings
from saml_gate.policy.hosts import KnownHosts
from saml_gate.session.cookies import cookie_header, find_cookie
from saml_gate.session.return_to import MAX_RETURN_PATH, ReturnTargets, safe_return_path
from saml_gate.session.signing import ExpiringCookie, timed_serializer
from saml_gate.user import SamlUser

__all__ = ["MAX_RETURN_PATH", "PendingLogin", "Reasserting", "RelayTracker", "safe_return_path"]

#: The slots that take turns, and the one for a long return path (see the module docstring).
SLOTS: Final = ("0", "1", "2", "3")
LONG_SLOT: Final = "L"
#: Return paths up to this size (JSON, UTF-8) take a turn; longer ones go in the long slot.
SHORT_PATH_BYTES: Final = 400
#: Longer paths are stored without their query string, or as "/" (a 2,048-character path fits).
MAX_PATH_BYTES: Final = MAX_RETURN_PATH + 2


def _path_bytes(path: str) -> int:
    """What a return path takes in a pending cookie's JSON (before base64)."""
    return len(json.dumps(path, ensure_ascii=False).encode())


def storable_return_path(path: str, check: Callable[[str], str | None] = safe_return_path) -> str:
    """``path`` if it is safe and fits a pending cookie; else without its query; else "/".

    Long or odd URLs used to be stored as they were and refused at the ACS (unknown_request).
    """
    for candidate in (path, path.partition("?")[0]):
        safe = check(candidate)
        if safe is not None and _path_bytes(safe) <= MAX_PATH_BYTES:
            return safe
    return "/"


@dataclass(frozen=True)
class Reasserting:
    """The session a passive sign-in asks the IdP about (``reassert_interval``): whose sessions
    end if the IdP does not vouch for the person, and which session the answer replaces."""

    session_id: str
    issuer: str
    name_id: str

    @classmethod
    def of(cls, user: SamlUser) -> Reasserting:
        return cls(user.session_id, user.issuer, user.name_id)


@dataclass(frozen=True)
class PendingLogin:
    key: str
    request_id: str
    return_path: str
    reasserting: Reasserting | None = None


class RelayTracker:
    """Starts sign-ins (their RelayState and pending cookies) and finds them again at the ACS.

    ``hosts``: the hosts a ``return_to`` URL may be on, asked at each use: the gate's is its
    live access policy's (a reloaded ``allowed_hosts`` applies to the next sign-in, and a
    pending one whose host was removed returns nowhere); without it, the settings' (fixed)."""

    def __init__(
        self, settings: GateSettings, hosts: Callable[[], KnownHosts] | None = None
    ) -> None:
        self._settings = settings
        self._timeout = int(settings.login_timeout)
        self._relay = timed_serializer(settings.secret_key, "relay")
        self.cookie_prefix = settings.cookie_prefix + "_req_"
        self.cookie_path = settings.public_path("/acs")
        self._pending = ExpiringCookie(
            settings, settings.secret_key, "pending", lifetime=self._timeout, path=self.cookie_path
        )
        self.turn_cookie = settings.cookie_prefix + "_reqslot"
        self._names = tuple((slot, self.cookie_prefix + slot) for slot in (*SLOTS, LONG_SLOT))
        """Each slot and its cookie's name."""
        self._clears = {slot: self._pending.clear(name) for slot, name in self._names}
        """Each slot's clearing Set-Cookie values: fixed for a configuration, built once."""
        if hosts is None:
            fixed = KnownHosts(settings.allowed_hosts, settings.base_url)
            self._hosts: Callable[[], KnownHosts] = lambda: fixed
        else:
            self._hosts = hosts

    @property
    def targets(self) -> ReturnTargets:
        """Where a sign-in may return, on the hosts in force now (read it once per request)."""
        return ReturnTargets(self._hosts())

    def start(
        self,
        return_path: str = "/",
        cookie_header: str | None = None,
        targets: ReturnTargets | None = None,
    ) -> tuple[str, str]:
        """(key, RelayState token) for a new sign-in; ``cookie_header``: the request's (for the
        turn). Give :meth:`pending_cookies` the same ``return_path`` (and ``targets``, None:
        :attr:`targets`): it decides the slot."""
        check = (targets or self.targets).check
        if _path_bytes(storable_return_path(return_path, check)) > SHORT_PATH_BYTES:
            slot = LONG_SLOT
        else:
            turn = find_cookie(cookie_header, self.turn_cookie) if cookie_header else None
            slot = turn if turn in SLOTS else secrets.choice(SLOTS)
        key = slot + secrets.token_urlsafe(9)
        return key, str(self._relay.dumps(key))

    def pending_cookies(
        self,
        key: str,
        request_id: str,
        return_path: str,
        reasserting: Reasserting | None = None,
        targets: ReturnTargets | None = None,
    ) -> list[bytes]:
        """Set-Cookie values for a started sign-in: its slot (two on http loopback: see
        cookies.py), then the turn cookie when the slot takes turns. ``reasserting``: the
        session a passive sign-in asks about (the ACS cannot read the session cookie: it is
        SameSite=Lax, and the IdP's POST is cross-site)."""
        slot = self._slot(key)
        stored = storable_return_path(return_path, (targets or self.targets).check)
        value: list[object] = [key, request_id, stored]
        if reasserting is not None:
            r = reasserting
            value.append([r.session_id, r.issuer, r.name_id])
        cookies = self._pending.set(self.cookie_prefix + slot, value)
        if slot in SLOTS:
            following = SLOTS[(SLOTS.index(slot) + 1) % len(SLOTS)]
            turn = cookie_header(self._settings, self.turn_cookie, following, max_age=self._timeout)
            cookies.append(turn)
        return cookies

    def pending_cookie(self, key: str, request_id: str, return_path: str) -> bytes:
        """The main Set-Cookie value of a started sign-in (what a browser that started it has)."""
        return self.pending_cookies(key, request_id, return_path)[0]

    def clear_cookies(self, key: str) -> list[bytes]:
        return list(self._clears[self._slot(key)])

    @staticmethod
    def _slot(key: str) -> str:
        """The slot a key names (its first character); keys not made by start() use slot 0."""
        slot = key[:1]
        return slot if slot in SLOTS or slot == LONG_SLOT else SLOTS[0]

    def relay_key(self, relay_state: str) -> str | None:
        """The key in a RelayState token we issued, or None (expired, forged or not ours)."""
        try:
            return str(self._relay.loads(relay_state, max_age=self._timeout))
        except (SignatureExpired, BadSignature):
            return None

    def pending(
        self, cookies: Mapping[str, str], targets: ReturnTargets | None = None
    ) -> list[PendingLogin]:
        """Every valid pending sign-in this browser holds (whose return path is one of
        ``targets``, None: :attr:`targets`)."""
        targets = targets or self.targets
        found: list[PendingLogin] = []
        for slot, name in self._names:
            for value in self._pending.read(cookies, name):
                login = self._login(slot, value, targets)
                if login is not None and login not in found:
                    found.append(login)
        return found

    def _login(self, slot: str, value: object, targets: ReturnTargets) -> PendingLogin | None:
        """The pending sign-in in a cookie's (verified) value, if it is well-formed, safe and
        in the slot its key names."""
        if not isinstance(value, list) or len(value) not in (3, 4):
            return None
        key, request_id, path = (str(part) for part in value[:3])
        safe = targets.check(path)
        if safe is None or self._slot(key) != slot:
            return None
        reasserting = None
        if len(value) == 4:
            session = value[3]
            if not (isinstance(session, list) and len(session) == 3):
                return None
            reasserting = Reasserting(*(str(part) for part in session))
        return PendingLogin(key, request_id, safe, reasserting)
