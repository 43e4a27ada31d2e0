"""ngrok tunnels through the ngrok Python SDK (saml-gate's optional ``ngrok`` extra)."""

from __future__ import annotations

import os
from typing import Any


class TunnelError(RuntimeError):
    """The tunnel could not be opened; the message is one line that says what to do."""


def open_ngrok_tunnel(host: str, port: int, domain: str | None = None) -> str:
    """Forward an ngrok HTTPS endpoint to host:port; return its public URL.

    The listener lives as long as the process (the SDK keeps it); the authtoken comes from
    ``NGROK_AUTHTOKEN``. ``domain`` is a reserved domain, so the Okta values stay stable.
    """
    try:
        import ngrok
    except ImportError:
        from saml_gate.config.extras import install_hint

        raise TunnelError(f"--ngrok needs the ngrok SDK: {install_hint('ngrok')}") from None
    if not os.environ.get("NGROK_AUTHTOKEN"):
        raise TunnelError(
            "--ngrok needs NGROK_AUTHTOKEN (ngrok dashboard → Your Authtoken) in the environment"
        )
    options: dict[str, Any] = {"authtoken_from_env": True}
    if domain:
        options["domain"] = domain
    try:
        listener = ngrok.forward(f"{host}:{port}", **options)
        url = str(listener.url())
    except Exception as exc:  # the SDK raises ValueError and others; all mean "no tunnel"
        reason = " ".join(str(a) for a in getattr(exc, "args", ())) or type(exc).__name__
        raise TunnelError(
            f"ngrok could not open a tunnel ({reason}): check the network, NGROK_AUTHTOKEN"
            + (f" and that {domain} is reserved for this account" if domain else "")
        ) from exc
    if not url.startswith("https://"):
        raise TunnelError(f"ngrok returned an unexpected URL {url!r}")
    return url
