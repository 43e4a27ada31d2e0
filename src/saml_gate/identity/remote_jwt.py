"""Checking a JWT another party signed with the keys it publishes (a JWKS): Okta's Universal
Logout requests; an issuer's OAuth access tokens are the same check with other claims.

PyJWT does the JOSE; this module decides what is accepted, in this order:

1. the header: the token type when one is required (``typ``, compared case-insensitively with
   an optional ``application/``), an algorithm of the allow-list (asymmetric only: never
   ``none`` nor an HMAC keyed with a public key), a ``kid``;
2. the key: the one the key source publishes under that ``kid``, for signing (``use``), of the
   type the algorithm needs (an RSA key for RS/PS, the EC curve of ES256/384/512), and the
   algorithm its JWK names, if it names one;
3. the signature, ``iss`` and ``aud`` (PyJWT; ``one_audience``: ``aud`` is that single value);
4. the times, against the gate's clock with ``leeway``: ``exp`` required and not passed,
   ``nbf`` and ``iat`` not ahead, ``exp - iat`` at most ``max_lifetime``;
5. the claims every caller needs (``require``).

Whether a ``jti`` was seen before is the caller's check: it needs the shared store.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import jwt

#: Asymmetric JWS algorithms, each with the key type (and EC curve) it verifies with.
KEY_TYPES: Final[Mapping[str, tuple[str, str | None]]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}
MAX_TOKEN_BYTES: Final = 16 * 1024

#: Why a token is refused: its shape or signature, its issuer, its audience, its times, or
#: the keys that would check it cannot be had.
Refusal = Literal["invalid", "issuer", "audience", "expired", "keys_unavailable"]


class JwtRefused(Exception):
    """The token is refused; ``reason`` says which check, ``detail`` (for the log) how. The
    detail never holds the token."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: Refusal = reason
        self.detail = detail


class KeysUnavailable(Exception):
    """The key source has no key set to look in (never fetched, the signer unreachable)."""


class KeySource(Protocol):
    """Where the signer's published keys come from (a JWKS)."""

    async def jwk(self, kid: str) -> Mapping[str, Any] | None:
        """The published JWK with this ``kid`` (None: not published); raises
        :class:`KeysUnavailable` when no key set can be had."""
        ...


@dataclass(frozen=True)
class JwtRules:
    """What a token must be: its issuer (any of ``issuers``), audience (one of ``audiences``),
    algorithms, type, lifetime, claims; ``leeway``: the clock tolerance in seconds."""

    issuers: Collection[str]
    audiences: Collection[str]
    leeway: float
    algorithms: Collection[str] = tuple(KEY_TYPES)
    one_audience: bool = False
    """``aud`` must be a single value, not a list that also names others."""
    token_type: str | None = None
    max_lifetime: float | None = None
    require: Collection[str] = ("iss", "aud", "exp", "iat")


class RemoteJwtVerifier:
    """Verifies tokens against a :class:`KeySource` and :class:`JwtRules` (module docstring)."""

    def __init__(self, keys: KeySource, rules: JwtRules, clock: Callable[[], float]) -> None:
        unknown = set(rules.algorithms) - set(KEY_TYPES)
        if unknown:
            raise ValueError(f"not an asymmetric JWS algorithm: {', '.join(sorted(unknown))}")
        if rules.one_audience and len(rules.audiences) != 1:
            raise ValueError("one_audience needs exactly one audience")
        self._keys = keys
        self._rules = rules
        self._clock = clock

    async def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, or :class:`JwtRefused`."""
        rules = self._rules
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise JwtRefused("invalid", "empty or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise JwtRefused("invalid", f"not a JWS: {exc}") from None
        self._check_type(header.get("typ"))
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in rules.algorithms:
            raise JwtRefused("invalid", f"algorithm {algorithm!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise JwtRefused("invalid", "the token names no key (kid)")
        try:
            found = await self._keys.jwk(kid)
        except KeysUnavailable as exc:
            raise JwtRefused("keys_unavailable", str(exc)) from None
        if found is None:
            raise JwtRefused("invalid", f"no published key has kid {kid!r}")
        key = _verifying_key(found, algorithm, kid)
        audience: str | list[str] = list(rules.audiences)
        if rules.one_audience:  # PyJWT's strict_aud: aud is that one string, no list
            audience = audience[0]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                issuer=list(rules.issuers),
                audience=audience,
                options={
                    "require": list(rules.require),
                    "strict_aud": rules.one_audience,
                    "verify_exp": False,  # against the gate's clock, below
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidIssuerError as exc:
            raise JwtRefused("issuer", str(exc)) from None
        except jwt.InvalidAudienceError as exc:
            raise JwtRefused("audience", str(exc)) from None
        except jwt.PyJWTError as exc:
            raise JwtRefused("invalid", f"{type(exc).__name__}: {exc}") from None
        self._check_times(claims)
        return claims

    def _check_type(self, typ: object) -> None:
        wanted = self._rules.token_type
        if wanted is None:
            return
        given = typ.lower().removeprefix("application/") if isinstance(typ, str) else None
        if given != wanted.lower():
            raise JwtRefused("invalid", f"token type {typ!r}, expected {wanted!r}")

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        rules, now = self._rules, self._clock()
        leeway = rules.leeway
        times = {name: claims.get(name) for name in ("exp", "nbf", "iat")}
        for name, value in times.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not number:
                raise JwtRefused("invalid", f"{name} is not a number")
        exp, nbf, iat = (float(v) if v is not None else None for v in times.values())
        if exp is None:
            raise JwtRefused("invalid", "no exp")
        if now >= exp + leeway:
            raise JwtRefused("expired", f"expired {now - exp:.0f} s ago")
        for name, when in (("nbf", nbf), ("iat", iat)):
            if when is not None and when > now + leeway:
                raise JwtRefused("expired", f"{name} is {when - now:.0f} s ahead: not yet valid")
        longest = rules.max_lifetime
        if longest is not None:
            start = iat if iat is not None else now
            if exp - start > longest or exp - now > longest + leeway:
                raise JwtRefused("invalid", f"lives longer than {longest:g} s")


def _verifying_key(jwk: Mapping[str, Any], algorithm: str, kid: str) -> Any:
    """The public key of ``jwk`` for ``algorithm``, when the JWK is fit for it."""
    key_type, curve = KEY_TYPES[algorithm]
    if jwk.get("use", "sig") != "sig":
        raise JwtRefused("invalid", f"the key {kid!r} is not for signatures")
    named = jwk.get("alg")
    if named is not None and named != algorithm:
        raise JwtRefused("invalid", f"the key {kid!r} is for {named}, the token says {algorithm}")
    if jwk.get("kty") != key_type or (curve is not None and jwk.get("crv") != curve):
        raise JwtRefused("invalid", f"the key {kid!r} is not a key for {algorithm}")
    try:
        return jwt.PyJWK(dict(jwk), algorithm=algorithm).key
    except jwt.PyJWTError as exc:
        raise JwtRefused("invalid", f"the key {kid!r} is unusable: {exc}") from None
