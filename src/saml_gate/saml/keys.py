"""Self-signed RSA key pairs: generation, persistence and PEM helpers.

Used for the SP's development keys, ``saml-gate keygen`` and the development IdP.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    """A PEM private key (PKCS#8, unencrypted) and its PEM certificate."""

    key_pem: bytes
    cert_pem: bytes


def generate_keypair(
    common_name: str,
    *,
    days: int = 3650,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> KeyPair:
    """A self-signed SHA-256 certificate valid for ``days`` days, for ``key`` (default: a new
    RSA 2048 key)."""
    if key is None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # A little back-dated so that a clock slightly behind still accepts it.
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(key_pem=key_pem, cert_pem=cert.public_bytes(serialization.Encoding.PEM))


def cert_base64(cert_pem: bytes) -> str:
    """The base64 of the certificate's DER, on one line (metadata and KeyInfo content)."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def _paths(directory: Path, stem: str) -> tuple[Path, Path]:
    return directory / f"{stem}.key.pem", directory / f"{stem}.cert.pem"


def _check_pair(pair: KeyPair, key_path: Path) -> KeyPair:
    key = serialization.load_pem_private_key(pair.key_pem, password=None)
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    if key.public_key() != cert.public_key():
        raise ValueError(f"{key_path} does not match the certificate beside it")
    return pair


def ensure_private_dir(directory: Path) -> None:
    """Create ``directory`` (mode 0700) unless it exists."""
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is masked by the umask


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` only if it does not exist yet (atomic, never overwrites).

    The bytes go to a private temporary file first and are then hard-linked into place, so a
    concurrent reader (another worker process) never sees a half-written file.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def load_or_create_keypair(directory: Path, stem: str, common_name: str) -> tuple[KeyPair, bool]:
    """Read ``{stem}.key.pem`` and ``{stem}.cert.pem`` from ``directory``, or create them.

    Returns the pair and True when it was generated now. A new directory gets mode 0700 and the
    key file 0600. If another process creates the same pair at the same moment, its pair wins
    and is returned. One file without the other is an error: the pair is never half-replaced.
    """
    directory = Path(directory).expanduser()
    key_path, cert_path = _paths(directory, stem)
    ensure_private_dir(directory)
    if not key_path.exists() and not cert_path.exists():
        pair = generate_keypair(common_name)
        try:
            write_new(key_path, pair.key_pem, 0o600)
        except FileExistsError:
            pass  # lost a race with another process: use what it wrote
        else:
            write_new(cert_path, pair.cert_pem, 0o644)
            return pair, True
    # Give a concurrent creator a moment to put the certificate beside its key.
    deadline = time.monotonic() + 2.0
    while key_path.exists() and not cert_path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    missing = [p for p in (key_path, cert_path) if not p.exists()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} is missing while the other file of the pair exists; "
            "remove both files to generate a new pair"
        )
    pair = KeyPair(key_pem=key_path.read_bytes(), cert_pem=cert_path.read_bytes())
    return _check_pair(pair, key_path), False
