"""A signer's published keys (a JSON Web Key Set): from a URL, fetched and refreshed like IdP
metadata, or from a file or the JSON itself.

A URL is fetched as IdP metadata is (:func:`~saml_gate.runtime.idp_source.fetch_text`: async
httpx, ``metadata_timeout`` for everything, ``metadata_max_bytes``, https redirects only),
first at start-up — a failure there is logged, not fatal: the gate's sign-ins do not need
these keys — then every ``refresh_interval`` (every minute while fetches fail). A token naming
a ``kid`` the set lacks (the signer rolled its keys over) makes it fetch again at once, at most
once a minute, however many such tokens come: forged ones cannot make the gate hammer the
signer. A document that fails to download or parse keeps the keys in use. A file or inline set
is read at start-up, and a bad one stops the gate naming the setting.

Only keys fit for checking signatures are kept: RSA and EC keys with a ``kid``, not marked
for encryption (``use``). Which algorithm a key may verify is :mod:`saml_gate.identity.
remote_jwt`'s decision.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.to_thread

from saml_gate.background import BackgroundJob
from saml_gate.config.checks import is_url
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.identity.remote_jwt import KeysUnavailable
from saml_gate.runtime.idp_source import describe_failure, fetch_text

if TYPE_CHECKING:  # imported by the fetches only (a URL source)
    import httpx

log = logging.getLogger("saml_gate")

#: Seconds between fetches prompted by unknown ``kid`` values, and between retries of a
#: failing fetch.
MIN_REFETCH: Final = 60.0
_KEY_TYPES: Final = frozenset({"RSA", "EC"})

Jwk = Mapping[str, Any]


def parse_key_set(text: str) -> dict[str, Jwk]:
    """The signing keys of a JWKS document by ``kid``; ValueError when it is none."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise ValueError('not a JSON Web Key Set (no "keys" list)')
    usable: dict[str, Jwk] = {}
    for key in keys:
        if not isinstance(key, dict) or key.get("kty") not in _KEY_TYPES:
            continue
        kid = key.get("kid")
        if isinstance(kid, str) and kid and key.get("use", "sig") == "sig":
            usable.setdefault(kid, key)
    if not usable:
        raise ValueError("no signing key with a kid (RSA or EC) in the key set")
    return usable


class RemoteKeySet:
    """The keys published at ``source`` (a URL, a file or JWKS JSON), for ``setting``: a
    :class:`~saml_gate.identity.remote_jwt.KeySource`."""

    def __init__(
        self,
        source: str,
        *,
        setting: str,
        timeout: float,
        max_bytes: int,
        refresh_interval: float,
        clock: Callable[[], float],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._source = source.strip()
        self._setting = setting
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._transport = transport
        self.is_url = is_url(self._source)
        self.keys: dict[str, Jwk] = {}
        """The keys in use, by kid (empty until loaded)."""
        self.last_error: str | None = None
        self._refetched_at: float | None = None
        """When an unknown kid last made it fetch (those fetches are rate-limited)."""
        self._fetch_lock: anyio.Lock | None = None
        self._refresher = BackgroundJob(self._refresh_forever)

    @classmethod
    def fetched_as_metadata(cls, settings: GateSettings, source: str, setting: str) -> RemoteKeySet:
        """The key set at ``source`` fetched with the IdP metadata's timeout, size limit and
        refresh interval."""
        return cls(
            source,
            setting=setting,
            timeout=settings.metadata_timeout,
            max_bytes=settings.metadata_max_bytes,
            refresh_interval=settings.metadata_refresh_interval,
            clock=settings.clock,
        )

    # ------------------------------------------------------------------ start-up
    async def load(self) -> None:
        """Start-up: a file or inline set is read (ConfigError naming the setting when it is
        not a key set); a URL is fetched once, a failure logged (tokens fetch it again)."""
        if self.is_url:
            await self._fetch()
            return
        try:
            text = await anyio.to_thread.run_sync(self._read_local)
            self.keys = parse_key_set(text)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ConfigError(self._setting, f"cannot use it as a key set: {exc}") from exc

    def _read_local(self) -> str:
        if self._source.startswith("{"):
            return self._source
        return Path(self._source).expanduser().read_text(encoding="utf-8")

    def start(self) -> None:
        """Refresh a URL's keys in the background (from a running event loop)."""
        if self.is_url:
            self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()

    # ------------------------------------------------------------------ use
    async def jwk(self, kid: str) -> Jwk | None:
        """The key published under ``kid``; an unknown kid fetches the set again (a URL, at
        most once a minute). :class:`KeysUnavailable` when no key set was ever had."""
        found = self.keys.get(kid)
        if found is None and self.is_url:
            await self._fetch(rate_limited=True)
            found = self.keys.get(kid)
        if found is None and not self.keys:
            raise KeysUnavailable(
                f"{self._setting}: no key set fetched yet ({self.last_error or 'not loaded'})"
            )
        return found

    async def _fetch(self, *, rate_limited: bool = False) -> bool:
        """Fetch the URL's set; True when it was adopted. Concurrent callers share one fetch;
        ``rate_limited`` ones (an unknown kid) skip it within a minute of the last such one."""
        import httpx

        if self._fetch_lock is None:
            self._fetch_lock = anyio.Lock()
        seen = self.keys
        async with self._fetch_lock:
            if self.keys is not seen:  # fetched while this caller waited
                return True
            if rate_limited:
                now, last = self._clock(), self._refetched_at
                if last is not None and now - last < MIN_REFETCH:
                    return False
                self._refetched_at = now
            try:
                text = await fetch_text(
                    self._source,
                    timeout=self._timeout,
                    max_bytes=self._max_bytes,
                    transport=self._transport,
                )
                keys = parse_key_set(text)
            except (httpx.HTTPError, ValueError) as exc:
                self.last_error = describe_failure(exc)
                log.error(
                    "saml-gate: %s: fetching %s failed, %s: %s",
                    self._setting,
                    self._source,
                    "keeping the keys in use" if self.keys else "no keys to check tokens with",
                    self.last_error,
                    extra={"event": "key_set_fetch_failed", "setting": self._setting},
                )
                return False
        self.last_error = None
        if keys != self.keys:
            log.info(
                "saml-gate: %s: %d key(s) from %s",
                self._setting,
                len(keys),
                self._source,
                extra={"event": "key_set_updated", "setting": self._setting},
            )
            self.keys = keys
        return True

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(MIN_REFETCH if self.last_error else self._refresh_interval)
            await self._fetch()
