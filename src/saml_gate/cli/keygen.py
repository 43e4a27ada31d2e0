"""``saml-gate keygen``: make every key and secret a deployment shares, in one folder to copy
to each host: the SP key pair, the identity JWT's signing key and the session secret.

The folder defaults to ``state_dir``, where the gate looks for the SP key pair and the JWT key
when ``sp_key`` and ``jwt_keys`` are not set. What is there already is kept and described (a
pair the gate or an earlier keygen made, which an IdP may already hold); ``--force`` replaces
everything."""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path

from saml_gate.cli.options import fail
from saml_gate.config.declaration import declared
from saml_gate.config.flags import add_flags
from saml_gate.config.loading import value_of
from saml_gate.config.settings import GateSettings

HELP = "make the SP key pair, the identity JWT key and the session secret"

SP_KEY, SP_CERT, JWT_KEY, SECRET = "sp.key.pem", "sp.cert.pem", "jwt.key.pem", "secret_key"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    state_dir = declared(GateSettings, "state_dir").default
    parser.add_argument(
        "--out-dir",
        help=f"where to write {SP_KEY}, {SP_CERT}, {JWT_KEY} and {SECRET}; the gate finds the"
        f" keys there when sp_key and jwt_keys are not set (default: the state_dir setting,"
        f" {state_dir})",
    )
    parser.add_argument(
        "--common-name", default="saml-gate SP", help="the certificate's CN (default: %(default)s)"
    )
    parser.add_argument(
        "--days", type=int, default=3650, help="validity in days (default: %(default)s)"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace every existing file (a new SP certificate must be given to the IdP again,"
        " a new secret signs everyone out)",
    )
    add_flags(parser, [GateSettings], {"config_file"})


@dataclass(frozen=True)
class Made:
    """One thing keygen made or kept: what it says, and the variables that point at it."""

    line: str
    exports: tuple[tuple[str, Path], ...]


def command(args: argparse.Namespace) -> int:
    out = Path(
        args.out_dir or value_of(GateSettings, "state_dir", config_file=args.config_file)
    ).expanduser()
    try:
        made = [
            _sp_pair(out, args.common_name, args.days, args.force),
            _jwt_key(out, args.force),
            _secret(out, args.force),
        ]
    except _Refused as exc:
        return fail(str(exc))
    for item in made:
        print(item.line)
    exports = " ".join(f"{name}={shlex.quote(str(path))}" for m in made for name, path in m.exports)
    print("\nUse them on every host of this deployment (copy the folder, keep it mode 700):")
    print(f"  export {exports}")
    print("Give the IdP the SP certificate: saml-gate setup prints it with every other value.")
    return 0


class _Refused(Exception):
    """Files keygen will not touch without --force; the message says which and why."""


def _write(path: Path, data: bytes, mode: int) -> None:
    from saml_gate.saml.keys import ensure_private_dir

    ensure_private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def _sp_pair(out: Path, common_name: str, days: int, force: bool) -> Made:
    from saml_gate.saml.keys import generate_keypair

    key_path, cert_path = out / SP_KEY, out / SP_CERT
    exports = (("SAML_GATE_SP_KEY", key_path), ("SAML_GATE_SP_CERT", cert_path))
    if not force and (key_path.exists() or cert_path.exists()):
        return Made(_existing_pair(key_path, cert_path), exports)
    pair = generate_keypair(common_name, days=days)
    _write(key_path, pair.key_pem, 0o600)
    _write(cert_path, pair.cert_pem, 0o644)
    line = (
        f"made {key_path} (private, mode 600) and {cert_path}: the SP key pair, valid {days} days"
    )
    return Made(line, exports)


def _existing_pair(key_path: Path, cert_path: Path) -> str:
    """What the SP key pair already in the folder is, or :class:`_Refused` when it is broken."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization

    missing = [p for p in (key_path, cert_path) if not p.exists()]
    if missing:
        raise _Refused(
            f"{missing[0]} is missing while the other file of the SP key pair exists: remove"
            " both, or use --force to make a new pair"
        )
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise _Refused(f"{key_path} / {cert_path} cannot be read as a key pair ({exc})") from exc
    if key.public_key() != cert.public_key():
        raise _Refused(f"{key_path} does not match {cert_path}: use --force to make a new pair")
    fingerprint = cert.fingerprint(hashes.SHA256()).hex(":").upper()
    subject = cert.subject.rfc4514_string() or "(no subject)"
    until = cert.not_valid_after_utc.date().isoformat()
    return (
        f"kept {key_path} and {cert_path}: an SP key pair was there already ({subject}, valid"
        f" until {until}, SHA-256 {fingerprint[:23]}…), made by an earlier keygen or by a gate"
        " using this folder as its state_dir. Keeping it is fine: an IdP may already hold its"
        " certificate (--force makes a new pair, which the IdP must then be given)"
    )


def _jwt_key(out: Path, force: bool) -> Made:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        load_pem_private_key,
    )

    from saml_gate.identity.keys import jwt_key

    path = out / JWT_KEY
    if path.exists() and not force:
        try:
            kid = jwt_key(load_pem_private_key(path.read_bytes(), password=None), str(path)).kid
        except (OSError, ValueError, TypeError) as exc:
            raise _Refused(f"{path} is not a usable JWT key ({exc}): use --force") from exc
        line = f"kept {path}: the identity JWT's signing key was there already (kid {kid})"
        return Made(line, (("SAML_GATE_JWT_KEYS", path),))
    private = ec.generate_private_key(ec.SECP256R1())
    _write(path, private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()), 0o600)
    kid = jwt_key(private, str(path)).kid
    line = f"made {path} (private, mode 600): the identity JWT's signing key, ES256, kid {kid}"
    return Made(line, (("SAML_GATE_JWT_KEYS", path),))


def _secret(out: Path, force: bool) -> Made:
    path = out / SECRET
    exports = (("SAML_GATE_SECRET_KEY_FILE", path),)
    if path.exists() and not force:
        return Made(f"kept {path}: the session secret was there already", exports)
    _write(path, (secrets.token_urlsafe(32) + "\n").encode(), 0o600)
    return Made(f"made {path} (private, mode 600): the session secret (secret_key)", exports)
