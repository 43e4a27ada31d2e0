"""The session cookie: what it holds, how it is signed, when it expires and is refreshed.

The cookie is a JSON array of the session's fields in a fixed order, signed in the compact form of
:class:`~saml_gate.session.signing.CompactSigner` (HMAC-SHA256). Cookies of the previous format
(an itsdangerous-signed JSON object) are still read until they expire; a refresh replaces them.
Secrets rotate: the first secret in ``secret_key`` signs, all of them verify, so adding a new
secret in front logs nobody out.
Decoded cookies are cached by their exact value (by its SHA-256: 32 bytes kept rather than the
~600 of a cookie), so the hot path pays one HMAC per cookie value, not per request.

When groups and attributes do not fit a cookie (hundreds of Okta groups), they go to the store
under ``session:<session id>`` until the session expires, and the cookie only says so; see
:meth:`SessionCodec.issue` and :meth:`SessionCodec.load`. Each process keeps what it fetched (or
wrote) until the session expires, so a session costs one store read per process, not one per
request. A session whose data is gone from the
store (a flushed Redis, a restarted process with the memory store) is treated as expired: the
person signs in again, rather than being let in without their groups.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple

from itsdangerous import BadSignature

from saml_gate.config.settings import GateSettings
from saml_gate.saml.response import VerifiedLogin
from saml_gate.session.cookies import cookie_header, expiring_everywhere
from saml_gate.session.signing import CompactSigner, compact_json, json_of, serializer
from saml_gate.store import Store
from saml_gate.store.base import Put, Write
from saml_gate.user import SamlUser

log = logging.getLogger("saml_gate")

MAX_COOKIE_BYTES: Final = 3800
_CACHE_SIZE: Final = 4096
_DATA_CACHE_SIZE: Final = 8192
#: Distinct group lists kept, each as one tuple that every session with that list shares
#: (people of a team share theirs: hundreds of groups each at Okta); all are dropped when full.
_GROUP_LISTS: Final = 1024
_Data = tuple[tuple[str, ...], Mapping[str, tuple[str, ...]]]
#: Where a session stands in its lifetime (see :meth:`SessionCodec.state`).
Lifetime = Literal["valid", "expired", "idle"]


@dataclass(frozen=True, slots=True)
class Session:
    user: SamlUser
    last_seen: float
    stored: bool = False
    """Groups and attributes live in the store, not in the cookie (too large for one)."""

    @property
    def expires_at(self) -> float:
        return self.user.expires_at


def new_session_id() -> str:
    """96 random bits, URL-safe, never starting with "-": an ID is typed on command lines
    (``saml-gate sessions revoke --session ID``), where a leading "-" reads as an option."""
    while True:
        session_id = secrets.token_urlsafe(12)
        if not session_id.startswith("-"):
            return session_id


class Issued(NamedTuple):
    """A new session (:meth:`SessionCodec.issue`): as kept, its Set-Cookie value, and what to
    write to the store for it."""

    session: Session
    cookie: bytes
    writes: list[Write]


class SessionCodec:
    def __init__(self, settings: GateSettings, store: Store, issuer: Callable[[], str]) -> None:
        self._settings = settings
        self._store = store
        self._issuer = issuer
        # The signature binds the cookie to
        # this SP: a gate with another entity ID (another base_url, the demo) and the same
        # secret mints cookies this one refuses.
        self._signer = CompactSigner(settings.secret_key, "session", bound_to=settings.entity_id)
        self._previous = serializer(settings.secret_key, "session", bound_to=settings.entity_id)
        """The previous format's reader (itsdangerous): its cookies still sign people in."""
        self._cache: dict[bytes, Session] = {}
        """Decoded sessions by :func:`_cache_key` of their cookie value."""
        self._data: dict[str, tuple[_Data, float]] = {}
        self._group_lists: dict[tuple[str, ...], tuple[str, ...]] = {}
        self.refresh_after = min(60.0, settings.inactivity_timeout / 10)

    @property
    def name(self) -> str:
        return self._settings.cookie_prefix + "_session"

    def new_session(self, login: VerifiedLogin, now: float) -> Session:
        """A session for ``login``, its times in whole seconds as the cookie carries them
        (rounded down: never longer, never fresher), so the session this process caches at
        :meth:`issue` is the one any process decodes from the cookie."""
        s = self._settings
        expires = now + s.maximum_duration
        if login.session_not_on_or_after is not None:
            expires = min(expires, login.session_not_on_or_after.timestamp())

        def first(name: str) -> str | None:
            values = login.attributes.get(name, ())
            return values[0] if values else None

        email = first(s.email_attribute)
        if email is None and "@" in login.name_id:
            email = login.name_id
        groups, attributes = self._shared_groups(
            tuple(dict.fromkeys(login.attributes.get(s.groups_attribute, ()))), login.attributes
        )
        user = SamlUser(
            name_id=login.name_id,
            email=email,
            name=first(s.name_attribute),
            groups=groups,
            attributes=attributes,
            name_id_format=login.name_id_format,
            session_index=login.session_index,
            issuer=login.issuer,
            authenticated_at=float(math.floor(login.authn_instant.timestamp())),
            expires_at=float(math.floor(expires)),
            session_id=new_session_id(),
            authn_context=login.authn_context,
            asserted_at=float(math.floor(now)),
        )
        return Session(user=user, last_seen=float(math.floor(now)))

    def issue(self, session: Session, now: float) -> Issued:
        """The new session as it will be kept, its Set-Cookie value, and what to write to the
        store for it: its groups and attributes move to the store when the cookie would be too
        large. Encoded once; the cookie is known to this process from the start, so the first
        request it comes back with pays no signature check."""
        value = self._dumps(session)
        writes: list[Write] = []
        if len(value) > MAX_COOKIE_BYTES:
            u = session.user
            data = {"g": list(u.groups), "a": {k: list(v) for k, v in u.attributes.items()}}
            ttl = u.expires_at - now + self._settings.clock_skew
            writes.append(Put("session:" + u.session_id, json.dumps(data), ttl))
            self._remember(u.session_id, (u.groups, u.attributes), u.expires_at)
            log.info(
                "saml-gate session for %s: %d groups and %d attributes kept in the store (too"
                " large for a cookie)",
                u.name_id,
                len(u.groups),
                len(u.attributes),
            )
            session = replace(session, stored=True)
            value = self._dumps(session)
        self._cache[_cache_key(value)] = session
        self._trim_cache()
        return Issued(session, self._set_cookie(value, session, now), writes)

    def _shared_groups(
        self, groups: tuple[str, ...], attributes: Mapping[str, tuple[str, ...]]
    ) -> tuple[tuple[str, ...], Mapping[str, tuple[str, ...]]]:
        """``groups`` as the one tuple of interned names every session with this list shares
        (:data:`_GROUP_LISTS`), and ``attributes`` with that tuple as the groups attribute's
        values when they are the same (each group named once): a session then holds no copy of
        its groups of its own."""
        if not groups:
            return groups, attributes
        lists = self._group_lists
        shared = lists.get(groups)
        if shared is None:
            if len(lists) >= _GROUP_LISTS:
                lists.clear()
            shared = lists[groups] = tuple(map(sys.intern, groups))
        name = self._settings.groups_attribute
        said = attributes.get(name)
        if said is not shared and said == shared:
            attributes = MappingProxyType({**attributes, name: shared})
        return shared, attributes

    # ------------------------------------------------------------------ cookie
    def cookie(self, session: Session, now: float) -> bytes:
        """The Set-Cookie value carrying ``session``, kept until the session expires."""
        return self._set_cookie(self.encode(session), session, now)

    def _set_cookie(self, value: str, session: Session, now: float) -> bytes:
        return cookie_header(
            self._settings, self.name, value, max_age=int(session.expires_at - now)
        )

    def clear_cookie(self) -> bytes:
        """The Set-Cookie value that removes the session cookie."""
        return cookie_header(self._settings, self.name, "", max_age=0)

    def clear_everywhere(self, hosts: Iterable[str], path: str) -> list[bytes]:
        """Set-Cookie values removing the session cookie under every domain and path that can
        send it to ``path`` on ``hosts`` (planted ones too: see ``DuplicateSession``)."""
        return expiring_everywhere(self._settings, self.name, hosts, path)

    # ------------------------------------------------------------------ codec
    def encode(self, session: Session) -> str:
        value = self._dumps(session)
        if len(value) > MAX_COOKIE_BYTES:
            raise ValueError("the session does not fit a cookie; keep it with issue() first")
        return value

    def _dumps(self, session: Session) -> str:
        u = session.user
        stored = session.stored  # groups and attributes in the store: null here
        payload = [
            u.name_id,
            u.name_id_format,
            u.email,
            u.name,
            None if stored else list(u.groups),
            None if stored else {k: list(v) for k, v in u.attributes.items()},
            u.session_index,
            u.issuer,
            round(u.authenticated_at),
            round(u.expires_at),
            u.session_id,
            u.authn_context,
            round(session.last_seen),
            round(u.asserted_at),
        ]
        return self._signer.dumps(compact_json(payload).encode())

    def _fields(self, value: str) -> list[Any] | None:
        """The session's fields in :meth:`_dumps`'s order from a cookie of either format; None
        when it is not one of ours."""
        if not value.startswith(self._signer.prefixes):
            p = self._previous.loads(value)  # the previous format: a JSON object
            stored = bool(p.get("r"))
            return [
                *(p["n"], p["f"], p["e"], p["d"]),
                *((None, None) if stored else (p["g"], p["a"])),
                *(p["x"], p["i"], p["t"], p["z"], p["s"], p.get("c"), p["l"]),
                p.get("v", p["t"]),  # older cookies lack it: the sign-in is the IdP's last word
            ]
        payload = self._signer.loads(value)
        if payload is None:
            return None
        fields = json_of(payload)
        return fields if isinstance(fields, list) else None

    async def load(self, value: str) -> Session | None:
        """The complete session in a cookie value, its data fetched from the store if it lives
        there; None when the cookie is not one of ours or its data is gone.
        Raises :class:`~saml_gate.store.StoreUnavailable` when that fetch fails."""
        session = self.decode(value)
        if session is None or not session.stored:
            return session
        key = _cache_key(value)
        if key in self._cache:
            return session
        sid = session.user.session_id
        kept = self._data.get(sid)
        data = kept[0] if kept is not None and kept[1] > self._settings.clock() else None
        if data is None:
            raw = await self._store.get("session:" + sid)
            data = _parse_data(raw) if raw is not None else None
            if data is None:
                log.info(
                    "saml-gate session for %s: its data is gone from the store (flushed or"
                    " restarted); signing in again",
                    session.user.name_id,
                )
                return None
            self._remember(sid, data, session.expires_at)
        groups, attributes = data
        complete = replace(
            session, user=replace(session.user, groups=groups, attributes=attributes)
        )
        self._cache[key] = complete
        self._trim_cache()
        return complete

    def cached(self, value: str) -> Session | None:
        """The complete session of a cookie value this process has read before (a stored one
        only once its data is here), else None: :meth:`load`'s answer without awaiting it (the
        hot path)."""
        cached = self._cache.get(_cache_key(value))
        if cached is not None and cached.user.issuer == self._issuer():
            return cached
        return None

    def decode(self, value: str) -> Session | None:
        """The session in a cookie value, or None when it is not one of ours. A session whose
        data lives in the store comes back without groups and attributes (``stored``): use
        :meth:`load` to get it whole."""
        key = _cache_key(value)
        cached = self._cache.get(key)
        if cached is not None:
            return cached if cached.user.issuer == self._issuer() else None
        try:
            fields = self._fields(value)
            if fields is None:
                return None
            n, f, e, d, g, a, x, i, t, z, s, c, last_seen, asserted = fields
            stored = g is None
            groups, attributes = self._shared_groups(
                () if stored else tuple(g),
                MappingProxyType({} if stored else {_interned(k): tuple(v) for k, v in a.items()}),
            )
            user = SamlUser(
                name_id=str(n),
                name_id_format=_interned(f),
                email=n if e == n else e,
                name=d,
                groups=groups,
                attributes=attributes,
                session_index=x,
                issuer=_interned(str(i)),
                authenticated_at=float(t),
                expires_at=float(z),
                session_id=str(s),
                authn_context=_interned(c),
                asserted_at=float(asserted),
            )
            session = Session(user=user, last_seen=float(last_seen), stored=stored)
        except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
            return None
        if user.issuer != self._issuer():  # signed in through an IdP this gate no longer trusts
            return None
        if not stored:
            self._cache[key] = session
            self._trim_cache()
        return session

    def _trim_cache(self) -> None:
        """At most :data:`_CACHE_SIZE` sessions: the oldest go first."""
        if len(self._cache) > _CACHE_SIZE:
            del self._cache[next(iter(self._cache))]

    def _remember(self, session_id: str, data: _Data, expires_at: float) -> None:
        """Keep a session's stored data in this process until the session expires."""
        if len(self._data) >= _DATA_CACHE_SIZE:
            now = self._settings.clock()
            self._data = {k: v for k, v in self._data.items() if v[1] > now}
            if len(self._data) >= _DATA_CACHE_SIZE:
                del self._data[next(iter(self._data))]
        self._data[session_id] = (data, expires_at)

    # ------------------------------------------------------------------ lifetime
    def state(self, session: Session, now: float) -> Lifetime:
        """'valid', 'expired' (absolute lifetime over) or 'idle' (inactivity timeout)."""
        if now >= session.expires_at:
            return "expired"
        if now - session.last_seen >= self._settings.inactivity_timeout:
            return "idle"
        return "valid"

    def needs_refresh(self, session: Session, now: float) -> bool:
        return now - session.last_seen >= self.refresh_after

    def quiet_until(self, session: Session) -> float:
        """Until when :meth:`state` stays "valid" and :meth:`needs_refresh` False."""
        last_seen = session.last_seen
        idle_at = last_seen + self._settings.inactivity_timeout
        return min(session.expires_at, idle_at, last_seen + self.refresh_after)

    @staticmethod
    def touched(session: Session, now: float) -> Session:
        return replace(session, last_seen=now)


def _cache_key(value: str) -> bytes:
    """The decoded-session cache's key for a cookie value: its SHA-256. Equal keys are equal
    values (SHA-256's collision resistance, which the cookie's own HMAC-SHA256 rests on too),
    in 32 bytes rather than the value's ~600; hashing it costs about what looking the value
    itself up in a dict did (the string's hash, over all its characters)."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


def _interned(text: Any) -> Any:
    """``text`` interned when it is a string (what every session through one IdP repeats: its
    entity ID, the NameID format, the AuthnContext class, the attribute names), else as it is
    for the checks that follow."""
    return sys.intern(text) if type(text) is str else text


def _parse_data(raw: str) -> _Data | None:
    try:
        data = json.loads(raw)
        groups = tuple(str(g) for g in data["g"])
        attributes = {str(k): tuple(str(x) for x in v) for k, v in data["a"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return groups, MappingProxyType(attributes)
