"""Service tokens the gate issues (``saml-gate tokens create``): what a token is, what the
store keeps of it, and checking one a request presents.

A token is ``sgt_`` and 43 base64url characters: 256 random bits. The prefix lets secret
scanners (GitHub's, gitleaks, trufflehog) find a leaked one. The store keeps only its SHA-256,
never the token: a keyed hash or a slow KDF buys nothing for a 256-bit random secret (no
guessing or dictionary can reach it, and a preimage of SHA-256 is out of reach), and a plain
hash lets the command and every gate compute it without sharing one more key.

What the store keeps (the shared store; the memory store belongs to one gate process, which
no command can reach):

* ``token:<sha256>`` → the record (name, groups, created, expires), living until it expires:
  the one round trip that checks a token this process has not seen;
* the expiring set ``tokens`` of the records, for ``tokens list`` and ``tokens revoke``.

Revoking announces the token's ID (``tok:`` and part of the hash) in the ``revoked`` set that
ends sessions (:class:`~saml_gate.session.revocation.Revocations`): it is pushed to every gate
sharing the store, with the same bound, the same outage rules, and checked without a round
trip. A token seen once is kept in this process (its record cannot change; only revocation and
expiry end it, and both are checked on every use). Last use is not recorded: it would cost a
store write per request.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from saml_gate.session.revocation import Revocations
from saml_gate.store import Store
from saml_gate.store.base import Announce, Put
from saml_gate.user import SamlUser

PREFIX: Final = "sgt_"
SECRET_BYTES: Final = 32
#: The issuer a gate token's principal names (``SamlUser.issuer``).
TOKEN_ISSUER: Final = "saml-gate"  # noqa: S105 (a name, not a secret)
TOKENS: Final = "tokens"
_SHAPE: Final = re.compile(r"sgt_[A-Za-z0-9_-]{43}")
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_CACHE_SIZE: Final = 10_000


class TokenRefused(Exception):
    """The token is not one the gate issued, expired, or revoked (``reason``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def new_token() -> str:
    """A new token: the prefix and 256 random bits."""
    return PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def is_gate_token(token: str) -> bool:
    return token.startswith(PREFIX)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def revocation_id(token_digest: str) -> str:
    """The ID a revocation names (never the token, nor its whole hash)."""
    return "tok:" + token_digest[:32]


def check_name(name: str) -> str | None:
    """Why ``name`` cannot name a token (None: it can)."""
    if _NAME.fullmatch(name) is None:
        return "a token name is 1-64 letters, digits, '.', '_' or '-', starting alphanumeric"
    return None


@dataclass(frozen=True)
class TokenRecord:
    """What the store keeps of a token."""

    name: str
    groups: tuple[str, ...]
    created_at: float
    expires_at: float
    revocation_id: str

    def encode(self) -> str:
        fields = [self.name, list(self.groups), self.created_at, self.expires_at]
        return json.dumps([*fields, self.revocation_id])

    @classmethod
    def decode(cls, text: str) -> TokenRecord | None:
        try:
            name, groups, created_at, expires_at, rid = json.loads(text)
            if not all(isinstance(g, str) for g in groups):
                return None
            return cls(str(name), tuple(groups), float(created_at), float(expires_at), str(rid))
        except (ValueError, TypeError):
            return None

    def principal(self) -> SamlUser:
        """The service as the app sees it."""
        return SamlUser(
            name_id=self.name,
            email=None,
            name=self.name,
            groups=self.groups,
            issuer=TOKEN_ISSUER,
            authenticated_at=self.created_at,
            expires_at=self.expires_at,
            session_id=self.revocation_id,
            asserted_at=self.created_at,
            kind="service",
            token_name=self.name,
        )


class GateTokens:
    """Creates, lists, revokes and checks gate service tokens in ``store``."""

    def __init__(
        self, store: Store, revocations: Revocations, clock: Callable[[], float], skew: float
    ) -> None:
        self._store = store
        self._revocations = revocations
        self._clock = clock
        self._skew = skew
        self._seen: dict[str, SamlUser] = {}

    async def create(self, name: str, groups: Collection[str], lifetime: float) -> str:
        """A new token named ``name`` (unique among live ones), returned once."""
        now = self._clock()
        if any(r.name == name for r in await self.live(now)):
            raise ValueError(f"a live token is named {name!r}: revoke it first, or pick another")
        token = new_token()
        hashed = digest(token)
        record = TokenRecord(name, tuple(groups), now, now + lifetime, revocation_id(hashed))
        text = record.encode()
        await self._store.write(
            [
                Put("token:" + hashed, text, lifetime + self._skew),
                Announce(TOKENS, text, record.expires_at + self._skew, publish=False),
            ]
        )
        return token

    async def live(self, now: float) -> list[TokenRecord]:
        """Tokens neither expired nor revoked."""
        found = [r for r in map(TokenRecord.decode, await self._store.expiring(TOKENS, now)) if r]
        revoked = await self._revocations.revoked_now(now) if found else {}
        return [r for r in found if r.expires_at > now and r.revocation_id not in revoked]

    async def revoke(self, name: str) -> int:
        """Revoke every live token named ``name`` on every gate; how many."""
        now = self._clock()
        chosen = {r.revocation_id: r.expires_at for r in await self.live(now) if r.name == name}
        if not chosen:
            return 0
        return await self._revocations.revoke_ids(chosen, now)

    async def principal(self, token: str) -> SamlUser:
        """The service a presented token stands for, or :class:`TokenRefused`. Raises
        ``StoreUnavailable`` when the store is needed and cannot answer."""
        if _SHAPE.fullmatch(token) is None:
            raise TokenRefused("invalid", "not the shape of a gate token")
        hashed = digest(token)
        user = self._seen.get(hashed)
        if user is None:
            text = await self._store.get("token:" + hashed)
            record = TokenRecord.decode(text) if text is not None else None
            if record is None or record.revocation_id != revocation_id(hashed):
                raise TokenRefused("invalid", "no such gate token")
            user = record.principal()
            if len(self._seen) >= _CACHE_SIZE:
                self._seen.clear()
            self._seen[hashed] = user
        if self._clock() >= user.expires_at:
            raise TokenRefused("expired", f"the token {user.token_name!r} expired")
        if await self._revocations.is_revoked(user):
            raise TokenRefused("revoked", f"the token {user.token_name!r} was revoked")
        return user
