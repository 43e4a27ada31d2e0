"""``saml-gate keygen`` makes every value a deployment shares (the SP key pair, the identity JWT
key, the session secret), keeps and describes what is there, and agrees with the demo, whose
keys live apart."""

from __future__ import annotations

import re
import shlex
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from tests.test_cli import Server, cli_env, config, free_port, keys, saml_gate

__all__ = ["config", "keys"]  # fixtures: an IdP's metadata file and keys

FILES = ("sp.key.pem", "sp.cert.pem", "jwt.key.pem", "secret_key")


def exported(output: str) -> dict[str, str]:
    """The variables of keygen's ``export`` line."""
    (line,) = [x for x in output.splitlines() if x.strip().startswith("export ")]
    return dict(word.split("=", 1) for word in shlex.split(line.strip())[1:])


def test_keygen_makes_every_shared_value_and_the_gate_uses_them(
    tmp_path: Path, config: dict[str, str]
) -> None:
    out = tmp_path / "shared"
    made = saml_gate("keygen", "--out-dir", str(out))
    assert made.returncode == 0, made.stderr
    for name in FILES:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == (0o644 if name == "sp.cert.pem" else 0o600), (name, oct(mode))
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    jwt_key = load_pem_private_key((out / "jwt.key.pem").read_bytes(), password=None)
    assert isinstance(jwt_key, ec.EllipticCurvePrivateKey) and jwt_key.curve.name == "secp256r1"
    assert len((out / "secret_key").read_text().strip()) >= 32
    variables = exported(made.stdout)
    assert variables == {
        "SAML_GATE_SP_KEY": str(out / "sp.key.pem"),
        "SAML_GATE_SP_CERT": str(out / "sp.cert.pem"),
        "SAML_GATE_JWT_KEYS": str(out / "jwt.key.pem"),
        "SAML_GATE_SECRET_KEY_FILE": str(out / "secret_key"),
    }
    (kid,) = re.findall(r"kid (\S+)", made.stdout)

    # A gate given exactly the printed variables (and an IdP) starts and publishes that key.
    env = cli_env(
        SAML_GATE_IDP_METADATA=config["SAML_GATE_IDP_METADATA"],
        SAML_GATE_STATE_DIR=str(tmp_path / "state"),
        **variables,
    )
    check = saml_gate("check", "--base-url", "https://acme.example", env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    app = ("examples.fastapi_app.main:build_app", "--factory")
    server = Server("run", *app, "--base-url", f"http://127.0.0.1:{port}", env=env, port=port)
    try:
        jwks = server.get("/saml/jwks.json").json()
    finally:
        log = server.stop()
    assert [k["kid"] for k in jwks["keys"]] == [kid]
    assert "development key" not in log
    assert not (tmp_path / "state" / "sp.key.pem").exists()  # the pair given, none generated


def test_keygen_keeps_what_is_there_and_says_what_it_is(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    assert saml_gate("keygen", "--out-dir", str(out)).returncode == 0
    before = {name: (out / name).read_bytes() for name in FILES}
    again = saml_gate("keygen", "--out-dir", str(out))
    assert again.returncode == 0, again.stderr
    assert {name: (out / name).read_bytes() for name in FILES} == before
    kept = again.stdout
    assert f"kept {out / 'sp.key.pem'} and {out / 'sp.cert.pem'}" in kept
    assert "CN=saml-gate SP" in kept and "SHA-256 " in kept and "Keeping it is fine" in kept
    assert f"kept {out / 'jwt.key.pem'}" in kept and f"kept {out / 'secret_key'}" in kept

    forced = saml_gate("keygen", "--out-dir", str(out), "--force")
    assert forced.returncode == 0 and "kept" not in forced.stdout
    assert all((out / name).read_bytes() != before[name] for name in FILES)


def test_keygen_refuses_half_a_pair_or_a_mismatch(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    assert saml_gate("keygen", "--out-dir", str(out)).returncode == 0
    (out / "sp.cert.pem").unlink()
    half = saml_gate("keygen", "--out-dir", str(out))
    assert half.returncode == 2 and "sp.cert.pem is missing" in half.stderr
    other = tmp_path / "other"
    assert saml_gate("keygen", "--out-dir", str(other)).returncode == 0
    (out / "sp.cert.pem").write_bytes((other / "sp.cert.pem").read_bytes())
    mismatch = saml_gate("keygen", "--out-dir", str(out))
    assert mismatch.returncode == 2 and "does not match" in mismatch.stderr
    assert "Traceback" not in half.stderr + mismatch.stderr


def test_the_demo_keeps_its_keys_apart_so_keygen_then_works(tmp_path: Path) -> None:
    """The walkthrough after the demo: ``saml-gate keygen --out-dir ~/.saml-gate`` makes the
    real gate's values; the demo's keys stay in ~/.saml-gate/demo."""
    home = tmp_path / "home"
    home.mkdir()
    env = cli_env(HOME=str(home))
    port = free_port()
    server = Server("demo", env=env, port=port)
    try:
        assert server.get("/", headers={"accept": "text/html"}).status_code == 303
    finally:
        server.stop()
    state = home / ".saml-gate"
    assert (state / "demo" / "sp.key.pem").is_file() and (
        state / "demo" / "devidp.key.pem"
    ).is_file()
    assert not (state / "sp.key.pem").exists() and not (state / "jwt.key.pem").exists()

    made = saml_gate("keygen", "--out-dir", "~/.saml-gate", env=env)
    assert made.returncode == 0, made.stderr
    assert "kept" not in made.stdout and f"made {state / 'sp.key.pem'}" in made.stdout
    assert (state / "sp.key.pem").read_bytes() != (state / "demo" / "sp.key.pem").read_bytes()
