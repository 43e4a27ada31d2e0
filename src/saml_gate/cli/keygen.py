"""``saml-gate keygen``: write an SP key pair where the gate looks for it (``state_dir``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from saml_gate.cli.options import fail
from saml_gate.config.declaration import declared
from saml_gate.config.loading import value_of
from saml_gate.config.settings import GateSettings

HELP = "write an SP key and certificate"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    state_dir = declared(GateSettings, "state_dir").default
    parser.add_argument(
        "--out-dir",
        help="where to write sp.key.pem and sp.cert.pem; the gate finds them there when sp_key"
        f" is not set (default: the state_dir setting, {state_dir})",
    )
    parser.add_argument(
        "--common-name", default="saml-gate SP", help="the certificate's CN (default: %(default)s)"
    )
    parser.add_argument(
        "--days", type=int, default=3650, help="validity in days (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="replace existing files")


def command(args: argparse.Namespace) -> int:
    from saml_gate.saml.keys import generate_keypair

    out = Path(args.out_dir or value_of(GateSettings, "state_dir")).expanduser()
    key_path, cert_path = out / "sp.key.pem", out / "sp.cert.pem"
    if not args.force and (key_path.exists() or cert_path.exists()):
        return fail(f"{key_path} or {cert_path} exists; use --force to replace them")
    pair = generate_keypair(args.common_name, days=args.days)
    out.mkdir(parents=True, exist_ok=True)
    for path, data, mode in ((key_path, pair.key_pem, 0o600), (cert_path, pair.cert_pem, 0o644)):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode)
    print(f"wrote {key_path} (private, mode 600) and {cert_path} (valid {args.days} days)")
    print(f"use: SAML_GATE_SP_KEY={key_path} SAML_GATE_SP_CERT={cert_path}")
    print("upload the certificate to the IdP for encryption and Single Logout (saml-gate setup)")
    return 0
