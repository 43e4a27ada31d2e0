"""Bearer tokens: where they are read, what they stand for, and tokens made wrong on purpose.

``/machine/`` takes a session or a bearer token (deployers); every other path takes sessions
only. A token is read from ``Authorization: Bearer`` alone (the scheme in any case, any
whitespace): never from the query string (``access_token=``, however spelled: 400
``token_in_query``, even beside a valid session), never from a cookie. A request with a bearer
token is decided on the token: a session cookie beside it is not read, so an admin's cookie
next to a token does not open ``/admin/`` (403 ``token_not_accepted``), and a refused token
never falls back to the cookie. Forged, ``alg=none``, HS256-with-the-public-key and unknown
gate tokens are 401. Another scheme (``Basic``) is the app's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import jwt

from tests.request_side.corpus import (
    BAD,
    FORBIDDEN,
    LOGIN,
    Build,
    Ctx,
    Registry,
    raw,
    served,
    status,
)
from tests.support import hmac_signed

R = Registry("tokens")
INVALID = status(401)
Token = Callable[[Ctx], bytes]


def bearer(
    target: str,
    token: Token | None,
    *,
    scheme: bytes = b"Bearer ",
    sessions: Sequence[str] = (),
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> Callable[[Sequence[str]], Build]:
    """GET ``target`` with ``Authorization: <scheme><token>`` and the session cookies of
    ``sessions`` (the case's ``who`` only informs the oracle)."""

    def build(c: Ctx) -> bytes:
        lines = [b"GET " + target.encode() + b" HTTP/1.1", b"Host: " + c.host]
        if token is not None:
            lines.append(b"Authorization: " + scheme + token(c))
        lines += [name + b": " + value for name, value in extra]
        if sessions:
            lines.append(
                b"Cookie: " + b"; ".join(b"saml_gate_session=" + c.session(p) for p in sessions)
            )
        return b"\r\n".join([*lines, b"Connection: close", b"", b""])

    return raw(build)


def ci(c: Ctx) -> bytes:
    return c.token("ci")


def ci_users(c: Ctx) -> bytes:
    return c.token("ci-users")


def forged(c: Ctx) -> bytes:
    """The users-level token's signature on the deployers-level token's payload."""
    head, _, signature = c.token("ci-users").split(b".")
    return head + b"." + c.token("ci").split(b".")[1] + b"." + signature


def _claims(c: Ctx) -> dict[str, object]:
    return jwt.decode(c.token("ci"), options={"verify_signature": False})


def alg_none(c: Ctx) -> bytes:
    kid = jwt.get_unverified_header(c.token("ci"))["kid"]
    return jwt.encode(_claims(c), None, algorithm="none", headers={"kid": kid}).encode()


def hs256_confusion(c: Ctx) -> bytes:
    """HMAC-SHA256 keyed with the published RSA key's PEM (read from the public key set)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    jwk = json.loads(c.token_jwks)["keys"][0]
    pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return hmac_signed({"alg": "HS256", "kid": jwk["kid"]}, _claims(c), pem).encode()


# ---------------------------------------------------------------- where a token counts
R.add(
    "control",
    "a deployers token on /machine/",
    bearer("/machine/deploy", ci),
    who="ci",
    expect=served(),
    identity=True,
)
R.add(
    "scheme-lower-case",
    "bearer in lower case, a tab before the token",
    bearer("/machine/deploy", ci, scheme=b"bearer\t"),
    who="ci",
    expect=served(),
)
R.add(
    "browser-only-page",
    "a token on a session-only page",
    bearer("/page", ci),
    who="anon",
    expect=FORBIDDEN,
)
R.add("admin", "a token on /admin/", bearer("/admin/users", ci), who="anon", expect=FORBIDDEN)
R.add(
    "wrong-groups",
    "a users-level token on /machine/",
    bearer("/machine/deploy", ci_users),
    who="anon",
    expect=FORBIDDEN,
)
R.add(
    "admin-cookie-beside",
    "an admin's session cookie and a token, to /admin/: decided on the token",
    bearer("/admin/users", ci, sessions=["admins"]),
    who="admins",
    expect=FORBIDDEN,
)
R.add(
    "bad-token-beside-session",
    "a deployer-less session and a forged token, to /page: no fall-back to the cookie",
    bearer("/page", forged, sessions=["users"]),
    who="users",
    expect=FORBIDDEN,
)
R.add(
    "basic-is-the-apps",
    "Authorization: Basic with a users session",
    bearer("/page", lambda c: b"dXNlcjpwdw==", scheme=b"Basic ", sessions=["users"]),
    who="users",
    expect=served("page"),
)
R.add(
    "two-authorization-lines",
    "a deployers token, then another Authorization line",
    bearer("/machine/deploy", ci, extra=[(b"Authorization", b"Bearer other")]),
    who="anon",
    expect=INVALID,
)
R.add(
    "two-tokens",
    "two tokens in one Bearer header",
    bearer("/machine/deploy", lambda c: ci(c) + b" " + ci(c)),
    who="anon",
    expect=INVALID,
)

# ---------------------------------------------------------------- never from the URL or a cookie
for slug, query in [
    ("query", b"access_token="),
    ("query-upper", b"ACCESS_TOKEN="),
    ("query-encoded-name", b"access%5Ftoken="),
    ("query-second", b"a=1&access_token="),
]:
    R.add(
        f"in-{slug}",
        f"the token in the query string ({query.decode()})",
        raw(lambda c, q=query: bearer("/machine/deploy?" + (q + ci(c)).decode(), None)(())(c)),
        who="anon",
        expect=BAD,
    )
R.add(
    "in-query-with-session",
    "a valid session, and a token in the query string",
    raw(lambda c: bearer("/page?access_token=" + ci(c).decode(), None, sessions=["users"])(())(c)),
    who="users",
    expect=BAD,
)
R.add(
    "in-cookie",
    "the token in an access_token cookie",
    raw(
        lambda c: bearer("/machine/deploy", None, extra=[(b"Cookie", b"access_token=" + ci(c))])(
            ()
        )(c)
    ),
    who="anon",
    expect=LOGIN,
)

# ---------------------------------------------------------------- made wrong on purpose
for slug, title, token in [
    ("forged", "a token with another token's payload", forged),
    ("alg-none", "alg=none", alg_none),
    ("hs256-public-key", "HS256 keyed with the published RSA key", hs256_confusion),
    ("expired", "expired an hour ago", lambda c: c.token("ci", claims={"exp": 1_000_000_000})),
    ("wrong-audience", "for another API", lambda c: c.token("ci", claims={"aud": "api://other"})),
    (
        "wrong-issuer",
        "from another issuer",
        lambda c: c.token("ci", claims={"iss": "https://evil.test/oauth2/default"}),
    ),
    ("unknown-gate-token", "a gate token nobody issued", lambda c: b"sgt_" + b"A" * 43),
]:
    R.add(slug, title, bearer("/machine/deploy", token), who="anon", expect=INVALID)
