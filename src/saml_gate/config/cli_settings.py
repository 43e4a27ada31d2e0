"""The command line's own settings, declared: where the server commands (``run``, ``proxy``,
``forward-auth``, ``demo``) listen, how many processes serve, the ngrok tunnel, and the file the
secret is read from. Flags and ``SAML_GATE_*`` variables like every setting, but not keyword
arguments: a gate built in Python is served by whatever runs it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from saml_gate.config.declaration import setting
from saml_gate.config.kinds import TEXT
from saml_gate.config.loading import DeclaredSettings


@dataclass(frozen=True, kw_only=True)
class ServerFields:
    """How a server command serves: address, processes, tunnel, secret file."""

    GROUP: ClassVar[str] = "server"
    TITLE: ClassVar[str] = "Command line: the server commands (flags and variables only)"

    host: str = setting(
        "127.0.0.1",
        help="address to listen on; `0.0.0.0` for every interface",
        nonempty=True,
    )
    port: int = setting(8000, help="port to listen on", range=(1, 65535))
    workers: int = setting(
        1,
        help="uvicorn worker processes, each building the gate from the same command line; more"
        " than 1 needs a `store` they share (`redis://...`)",
        range=(1, 256),
    )
    ngrok: bool = setting(
        False,
        help="open an ngrok tunnel (needs `NGROK_AUTHTOKEN` and the `ngrok` extra) and use its"
        " URL as `base_url`",
    )
    ngrok_domain: str | None = setting(
        None,
        help="the reserved ngrok domain to open, so the IdP's values stay stable",
        kind=TEXT,
        shown_default="a random one",
    )
    secret_key_file: str | None = setting(
        None,
        help="read `secret_key` from this file (comma-separated to rotate), which other users"
        " cannot read: `--secret-key` shows the secret to every user in `ps`",
        kind=TEXT,
        shown_default="—",
    )


@dataclass(frozen=True, kw_only=True)
class CliSettings(ServerFields, DeclaredSettings):
    """The command line's validated settings (flags, then ``SAML_GATE_*`` variables)."""
