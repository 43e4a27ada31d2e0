"""The identity JWT's signing keys: from ``jwt_keys`` (PEM text or files, the first signs, all
are published), or one EC P-256 key generated once in ``state_dir`` for development.

Each key's ``kid`` is its RFC 7638 thumbprint, so it is stable across restarts and processes
and an upstream finds the key of a token in the JWKS; rotating is putting the new key first,
keeping the old one listed until the tokens it signed have expired (``jwt_lifetime``).
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError

log = logging.getLogger("saml_gate")

SETTING: Final = "jwt_keys"
DEV_KEY_FILE: Final = "jwt.key.pem"
_MIN_RSA_BITS: Final = 2048

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class JwtKey:
    """One signing key: the private key, its algorithm, ``kid`` and public JWK."""

    private: SigningKey
    algorithm: str
    kid: str
    public_jwk: dict[str, Any]


def jwt_key(private: object, where: str) -> JwtKey:
    """A :class:`JwtKey` for a loaded private key; ConfigError unless EC P-256 or RSA ≥ 2048."""
    members: tuple[str, ...]
    if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(private.public_key()))
        algorithm, members = "ES256", ("crv", "kty", "x", "y")
    elif isinstance(private, rsa.RSAPrivateKey) and private.key_size >= _MIN_RSA_BITS:
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
        algorithm, members = "RS256", ("e", "kty", "n")
    else:
        raise ConfigError(SETTING, f"{where}: use an EC P-256 key (ES256) or RSA of 2048+ bits")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    kid = _b64(_sha256(canonical.encode()))
    public = {**{m: jwk[m] for m in members}, "kid": kid, "alg": algorithm, "use": "sig"}
    return JwtKey(private, algorithm, kid, public)


def load_jwt_keys(settings: GateSettings, *, announce: bool = True) -> tuple[JwtKey, ...]:
    """The keys, the signing one first; a development key in ``state_dir`` when none is set
    (logged unless ``announce`` is false)."""
    from saml_gate.saml.sp import pem_or_file

    if not settings.jwt_keys:
        directory = Path(settings.state_dir).expanduser()
        return (_development_key(directory, settings.base_is_loopback, announce),)
    keys: list[JwtKey] = []
    for number, value in enumerate(settings.jwt_keys, 1):
        pem, path = pem_or_file(SETTING, value, "PRIVATE KEY")
        where = path or f"key {number}"
        try:
            private = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(SETTING, f"{where}: not an unencrypted PEM private key") from exc
        keys.append(jwt_key(private, where))
    if len({k.kid for k in keys}) != len(keys):
        raise ConfigError(SETTING, "the same key is listed twice")
    return tuple(keys)


def jwks(keys: tuple[JwtKey, ...]) -> dict[str, Any]:
    """The JSON Web Key Set served at ``/saml/jwks.json``: every key's public half."""
    return {"keys": [k.public_jwk for k in keys]}


def _development_key(directory: Path, loopback: bool, announce: bool) -> JwtKey:
    from saml_gate.saml.keys import ensure_private_dir, write_new

    path = directory / DEV_KEY_FILE
    if not path.exists():
        ensure_private_dir(directory)
        pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
        with contextlib.suppress(FileExistsError):  # another process wrote it first: use it
            write_new(path, pem, 0o600)
    if announce:
        (log.info if loopback else log.warning)(
            "saml-gate signs identity JWTs with the development key %s; set jwt_keys in"
            " production (every gate must sign with the keys upstreams find in its JWKS)",
            path,
        )
    return jwt_key(load_pem_private_key(path.read_bytes(), password=None), str(path))


def _sha256(data: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(data).digest()


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
