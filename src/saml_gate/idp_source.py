"""Where the IdP metadata comes from: inline XML, a file, or a URL refreshed in the background.

For a URL (Okta publishes one per app), the first copy is fetched at start-up with retries; the
last good copy is kept in memory and on disk, so an IdP outage or a broken document never stops
running logins. Refreshes honour ``cacheDuration`` and ``validUntil``; a document that fails to
download or parse is logged and ignored, and several signing certificates are accepted at once, so
a key rollover needs no restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx

from saml_gate.background import BackgroundJob
from saml_gate.errors import ConfigError
from saml_gate.idp import IdpInfo, parse_idp_metadata, read_metadata_source
from saml_gate.settings import GateSettings

log = logging.getLogger("saml_gate")

MIN_REFRESH: Final = 60.0
RETRIES: Final = 3
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_ATTR = r'\b{name}\s*=\s*"([^"]+)"'


def is_url(value: str) -> bool:
    return value.strip().lower().startswith(("https://", "http://"))


def parse_duration(text: str) -> float | None:
    """Seconds in an xs:duration of days/hours/minutes/seconds (``PT1H``, ``P1D``), else None."""
    match = _DURATION.match(text.strip())
    if not match or text.strip() in ("P", "PT"):
        return None
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


def refresh_delay(xml: str, default: float, now: float) -> float:
    """When to fetch again: the default, shortened by cacheDuration or an approaching validUntil."""
    delay = default
    duration = re.search(_ATTR.format(name="cacheDuration"), xml)
    if duration:
        seconds = parse_duration(duration.group(1))
        if seconds is not None:
            delay = min(delay, seconds)
    valid_until = re.search(_ATTR.format(name="validUntil"), xml)
    if valid_until:
        try:
            until = datetime.fromisoformat(valid_until.group(1).replace("Z", "+00:00"))
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            delay = min(delay, (until.timestamp() - now) / 2)
        except ValueError:
            pass
    return max(delay, MIN_REFRESH)


class IdpMetadataSource:
    """The current IdP metadata, and for a URL source, its background refresh."""

    def __init__(
        self,
        settings: GateSettings,
        on_change: Callable[[IdpInfo], None],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        assert settings.idp_metadata is not None
        self._settings = settings
        self._source = settings.idp_metadata.strip()
        self._on_change = on_change
        self._transport = transport
        self.is_url = is_url(self._source)
        self.loaded_at = 0.0
        self.last_error: str | None = None
        self.current: IdpInfo | None = None
        self._refresher = BackgroundJob(self._refresh_forever)
        digest = hashlib.sha256(self._source.encode()).hexdigest()[:16]
        self.cache_path = Path(settings.state_dir).expanduser() / f"idp-metadata-{digest}.xml"

    # ------------------------------------------------------------------ start-up
    def load_initial(self) -> IdpInfo:
        if not self.is_url:
            info = parse_idp_metadata(
                read_metadata_source(self._source), self._settings.idp_entity_id
            )
        else:
            info = self._initial_from_url()
        self.current = info
        self.loaded_at = self._settings.clock()
        return info

    def _initial_from_url(self) -> IdpInfo:
        error = ""
        for attempt in range(RETRIES):
            try:
                with httpx.Client(timeout=self._settings.metadata_timeout) as client:
                    xml = self._checked_text(client.get(self._source))
                info = parse_idp_metadata(xml, self._settings.idp_entity_id)
            except (httpx.HTTPError, ValueError, ConfigError) as exc:
                error = str(exc)
                log.warning(
                    "saml-gate: IdP metadata fetch %d/%d failed: %s", attempt + 1, RETRIES, error
                )
                time.sleep(min(2.0**attempt, 5.0) if attempt + 1 < RETRIES else 0)
                continue
            self._save(xml)
            return info
        try:
            cached = self.cache_path.read_text(encoding="utf-8")
        except OSError:
            raise ConfigError(
                "idp_metadata", f"cannot fetch {self._source} ({error}) and no cached copy exists"
            ) from None
        log.error(
            "saml-gate: IdP metadata unreachable (%s); using the copy cached at %s",
            error,
            self.cache_path,
        )
        self.last_error = error
        return parse_idp_metadata(cached, self._settings.idp_entity_id)

    def _checked_text(self, response: httpx.Response) -> str:
        response.raise_for_status()
        if len(response.content) > self._settings.metadata_max_bytes:
            raise ValueError(f"metadata is {len(response.content)} bytes, over metadata_max_bytes")
        return response.text

    def _save(self, xml: str) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(xml, encoding="utf-8")
            tmp.replace(self.cache_path)
        except OSError as exc:
            log.warning("saml-gate: cannot cache IdP metadata at %s: %s", self.cache_path, exc)

    # ------------------------------------------------------------------ refresh
    def start(self) -> None:
        """Start the background refresh (URL sources only); call from a running event loop."""
        if self.is_url:
            self._refresher.start()

    async def stop(self) -> None:
        await self._refresher.stop()

    async def refresh_now(self) -> bool:
        """Fetch once; True when new metadata was adopted. Failures keep the current copy."""
        try:
            async with httpx.AsyncClient(
                timeout=self._settings.metadata_timeout, transport=self._transport
            ) as client:
                xml = self._checked_text(await client.get(self._source))
            info = parse_idp_metadata(xml, self._settings.idp_entity_id)
        except (httpx.HTTPError, ValueError, ConfigError) as exc:
            self.last_error = str(exc)
            log.error(
                "saml-gate: IdP metadata refresh from %s failed, keeping the current copy: %s",
                self._source,
                exc,
                extra={"event": "metadata_refresh_failed"},
            )
            return False
        self.last_error = None
        self.loaded_at = self._settings.clock()
        if self.current is not None and info == self.current:
            return False
        self._save(xml)
        previous = self.current
        self.current = info
        self._on_change(info)
        log.info(
            "saml-gate: IdP metadata updated (%d signing certificate(s), was %d)",
            len(info.signing_certs),
            len(previous.signing_certs) if previous else 0,
            extra={"event": "metadata_updated"},
        )
        return True

    def next_delay(self) -> float:
        if self.last_error is not None or self.current is None:
            return MIN_REFRESH
        return refresh_delay(
            self.current.metadata_xml,
            self._settings.metadata_refresh_interval,
            self._settings.clock(),
        )

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.next_delay())
            await self.refresh_now()
