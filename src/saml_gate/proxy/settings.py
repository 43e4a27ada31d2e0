"""The reverse proxy's own options (:class:`ProxySettings`): keywords or ``SAML_GATE_*``
variables, checked when loaded. The gate's settings are separate (:class:`GateSettings`)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from saml_gate.config.settings import ENV_PREFIX
from saml_gate.errors import ConfigError
from saml_gate.identity.headers import DEFAULT_IDENTITY_HEADERS

_HEADER_NAME: Final = re.compile(r"[A-Za-z0-9-]+")


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """Options of the reverse proxy (the gate's own settings are separate)."""

    upstream: str
    """The app to protect: ``http://127.0.0.1:3000`` (scheme, host and port only)."""
    user_header: str = DEFAULT_IDENTITY_HEADERS[0]
    email_header: str = DEFAULT_IDENTITY_HEADERS[1]
    groups_header: str = DEFAULT_IDENTITY_HEADERS[2]
    preserve_host: bool = False
    """Send the browser's Host to the upstream (HTTP only) instead of the upstream's."""
    connect_timeout: float = 10.0
    upstream_timeout: float = 300.0
    """Seconds to wait for the upstream's next bytes; 0 waits forever (long polls, SSE)."""

    @classmethod
    def load(
        cls, upstream: str, environ: Mapping[str, str] | None = None, **options: Any
    ) -> ProxySettings:
        """From keywords, filling the rest from ``SAML_GATE_<NAME>`` variables; validated."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if f.name == "upstream" or raw is None or raw == "":
                continue
            try:
                values[f.name] = _parse(str(f.type), raw)
            except ValueError:
                raise ConfigError(f.name, f"{ENV_PREFIX}{f.name.upper()}={raw!r}") from None
        values.update({k: v for k, v in options.items() if v is not None})
        return cls(upstream=_check_upstream(upstream), **values)._checked()

    def _checked(self) -> ProxySettings:
        for name in ("user_header", "email_header", "groups_header"):
            value = getattr(self, name)
            if value and not _HEADER_NAME.fullmatch(value):
                raise ConfigError(name, f"{value!r} is not a header name (letters, digits, '-')")
        if not 0.1 <= self.connect_timeout <= 300:
            raise ConfigError("connect_timeout", "must be between 0.1 and 300 seconds")
        if not 0 <= self.upstream_timeout <= 86400:
            raise ConfigError("upstream_timeout", "must be between 0 (no limit) and 86400 seconds")
        return self


#: The keywords of :func:`build_proxy_app` that are :class:`ProxySettings` fields.
PROXY_OPTIONS: Final = frozenset(f.name for f in dataclasses.fields(ProxySettings)) - {"upstream"}


def _parse(kind: str, raw: str) -> Any:
    if kind == "bool":
        lowered = raw.strip().lower()
        if lowered not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(raw)
        return lowered in ("1", "true", "yes", "on")
    if kind == "float":
        return float(raw)
    return raw


def _check_upstream(value: Any) -> str:
    parts = urlsplit(str(value).strip()) if isinstance(value, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise ConfigError(
            "upstream", f"{value!r} must be an http(s) URL such as http://127.0.0.1:3000"
        )
    return f"{parts.scheme}://{parts.netloc}"
