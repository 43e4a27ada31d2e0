"""Where the IdP metadata comes from: inline XML, a file, or a URL refreshed in the background.

Loading it is start-up work (:meth:`IdpMetadataSource.load_initial`, awaited in the gate's
lifespan startup), never done when a gate is built. For a URL (Okta publishes one per app), the
first copy is fetched at start-up with retries (asynchronously: no thread, no blocking sleep); the
last good copy is kept in memory and on disk, so an IdP outage or a broken document never stops
running logins. Refreshes honour ``cacheDuration`` and ``validUntil``; a document that fails to
download or parse is logged and ignored, and several signing certificates are accepted at once, so
a key rollover needs no restart.

Every fetch (start-up and refresh) streams the body under ``metadata_max_bytes`` (counted after
decompression, so a gzip bomb stops at the cap), runs under one overall ``metadata_timeout``
deadline (connect, redirects and the whole body: a trickling server cannot hold it open), and
follows at most ``MAX_REDIRECTS`` redirects, https to https only (plain http only between loopback
URLs, as the settings allow for the metadata URL itself).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from saml_gate.background import BackgroundJob
from saml_gate.config.checks import is_loopback_host, is_url
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.policy.hosts import is_number
from saml_gate.saml.idp import IdpInfo, parse_idp_metadata

if TYPE_CHECKING:  # httpx is imported by the fetches only: a file or inline source never loads it
    import httpx

log = logging.getLogger("saml_gate")

MIN_REFRESH: Final = 60.0
#: Seconds to wait before each further start-up attempt (so three attempts in all).
RETRY_PAUSES: Final = (1.0, 2.0)
MAX_REDIRECTS: Final = 5
_ENCODINGS: Final = frozenset({"gzip", "x-gzip", "deflate"})
_DURATION = re.compile(
    r"^P(?:(?P<d>\d+(?:\.\d+)?)D)?(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)
_ATTR = r'\b{name}\s*=\s*"([^"]+)"'


class MetadataFetchError(ValueError):
    """Fetching the metadata document failed; the message says why, on one line."""


def read_metadata_source(value: str) -> str:
    """The metadata XML from an inline XML string or a file path."""
    text = value.strip()
    if text.startswith("<"):
        return text
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            "idp_metadata",
            f"is neither XML nor an existing file: {value[:200]!r} (Okta: Sign On tab →"
            " 'Identity Provider metadata', save it and give its path)",
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("idp_metadata", f"cannot read {path}: {exc}") from exc


def describe_failure(exc: Exception) -> str:
    """One line for the log or a ConfigError: no traceback, no httpx help text."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        text = "the IdP did not answer in time (metadata_timeout)"
    elif isinstance(exc, httpx.HTTPError):
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    else:
        text = str(exc)
    return " ".join(text.split())


def _shown(url: httpx.URL) -> str:
    """A URL for messages, without userinfo or query."""
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}{url.path}"


def redirect_target(current: httpx.URL, location: str) -> httpx.URL:
    """Where a redirect from ``current`` leads, if it may be followed: https → https only; plain
    http only from a loopback http URL to another loopback http URL (or up to https)."""
    import httpx

    try:
        target = current.join(location)
    except httpx.InvalidURL:
        raise MetadataFetchError("redirect to an invalid URL refused") from None
    if target.scheme == "https":
        return target
    if target.scheme == "http" and current.scheme == "http":
        if is_loopback_host(target.host):
            return target
        what = "redirect to a non-loopback http URL refused"
    else:
        what = "redirect to another scheme refused"
    raise MetadataFetchError(
        f"{what} ({current.scheme} → {_shown(target)}): metadata is only fetched over https"
        " (plain http only between loopback URLs)"
    )


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body, read in chunks and decompressed here (gzip/deflate) so that reading stops as
    soon as more than ``limit`` decoded bytes have arrived, before they are held in memory."""
    too_large = f"document larger than metadata_max_bytes ({limit} bytes)"
    declared = response.headers.get("content-length", "")
    if is_number(declared) and int(declared) > limit:
        raise MetadataFetchError(f"{too_large}: the server announces {declared} bytes")
    codings = [
        c.strip().lower()
        for c in response.headers.get_list("content-encoding", split_commas=True)
        if c.strip().lower() not in ("", "identity")
    ]
    if len(codings) > 1 or (codings and codings[0] not in _ENCODINGS):
        raise MetadataFetchError(f"unsupported Content-Encoding {', '.join(codings)!r}")
    # wbits MAX_WBITS|32: zlib or gzip header, detected automatically.
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if codings else None
    body = bytearray()
    try:
        async for raw in response.aiter_raw():
            if inflater is None:
                body += raw
            else:
                # max_length: a small chunk of a bomb never inflates past limit + 1 in memory.
                while raw and not inflater.eof and len(body) <= limit:
                    body += inflater.decompress(raw, limit + 1 - len(body))
                    raw = inflater.unconsumed_tail
            if len(body) > limit:
                raise MetadataFetchError(f"{too_large}; download stopped")
        if inflater is not None:
            body += inflater.flush()
    except zlib.error:
        raise MetadataFetchError(f"the {codings[0]} body is corrupt") from None
    if len(body) > limit:
        raise MetadataFetchError(f"{too_large}; download stopped")
    return bytes(body)


async def fetch_text(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    transport: httpx.AsyncBaseTransport | None = None,
) -> str:
    """A document published at ``url`` (IdP metadata, a key set), fetched as the module
    docstring says: one ``timeout`` deadline (``metadata_timeout``) for everything, at most
    ``max_bytes`` decoded, redirects https to https only. Raises :class:`MetadataFetchError`
    or :class:`httpx.HTTPError`."""
    import httpx

    try:
        with anyio.fail_after(timeout):
            async with httpx.AsyncClient(timeout=timeout, transport=transport) as client:
                return await _fetch_with(client, httpx.URL(url), max_bytes)
    except TimeoutError:
        raise MetadataFetchError(
            f"no complete answer within metadata_timeout ({timeout:g} s); download stopped"
        ) from None


async def _fetch_with(client: httpx.AsyncClient, url: httpx.URL, max_bytes: int) -> str:
    # Only encodings read_capped decodes itself (httpx would add br/zstd when installed).
    headers = {"Accept-Encoding": "gzip, deflate"}
    for _ in range(MAX_REDIRECTS + 1):
        # Leaving the block closes the response, and with an unread body, the connection.
        async with client.stream("GET", url, headers=headers) as response:
            if response.has_redirect_location:
                url = redirect_target(url, response.headers["location"])
                continue
            if not response.is_success:
                raise MetadataFetchError(f"HTTP {response.status_code} from {_shown(url)}")
            body = await read_capped(response, max_bytes)
            return body.decode(response.encoding or "utf-8", errors="replace")
    raise MetadataFetchError(f"more than {MAX_REDIRECTS} redirects")


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
        self._refetch_lock: anyio.Lock | None = None
        self._refetched_at: float | None = None
        digest = hashlib.sha256(self._source.encode()).hexdigest()[:16]
        self.cache_path = Path(settings.state_dir).expanduser() / f"idp-metadata-{digest}.xml"

    # ------------------------------------------------------------------ start-up
    async def load_initial(self) -> IdpInfo:
        """The metadata at start-up: read (a file), or fetched (a URL) with retries and the
        cached copy as the fallback. Raises :class:`ConfigError` naming ``idp_metadata``."""
        if not self.is_url:
            xml = await anyio.to_thread.run_sync(read_metadata_source, self._source)
            info = parse_idp_metadata(xml, self._settings.idp_entity_id)
        else:
            info = await self._initial_from_url()
        self.current = info
        self.loaded_at = self._settings.clock()
        return info

    async def _initial_from_url(self) -> IdpInfo:
        import httpx

        error = ""
        attempts = len(RETRY_PAUSES) + 1
        for attempt in range(attempts):
            if attempt:
                await anyio.sleep(RETRY_PAUSES[attempt - 1])
            try:
                xml = await self.fetch()
                info = parse_idp_metadata(xml, self._settings.idp_entity_id)
            except (httpx.HTTPError, ValueError, ConfigError) as exc:
                error = describe_failure(exc)
                log.debug(  # the outcome is one line: the cached copy used, or a ConfigError
                    "saml-gate: idp_metadata fetch %d/%d from %s failed: %s",
                    attempt + 1,
                    attempts,
                    self._source,
                    error,
                )
                continue
            await anyio.to_thread.run_sync(self._save, xml)
            return info
        try:
            cached = await anyio.to_thread.run_sync(self._read_cache)
        except OSError:
            raise ConfigError(
                "idp_metadata", f"cannot fetch {self._source} ({error}) and no cached copy exists"
            ) from None
        log.error(
            "saml-gate: idp_metadata unreachable (%s); using the copy cached at %s",
            error,
            self.cache_path,
        )
        self.last_error = error
        return parse_idp_metadata(cached, self._settings.idp_entity_id)

    def _read_cache(self) -> str:
        return self.cache_path.read_text(encoding="utf-8")

    async def fetch(self) -> str:
        """The metadata document, within one ``metadata_timeout`` deadline for everything."""
        s = self._settings
        return await fetch_text(
            self._source,
            timeout=s.metadata_timeout,
            max_bytes=s.metadata_max_bytes,
            transport=self._transport,
        )

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
        import httpx

        try:
            xml = await self.fetch()
            info = parse_idp_metadata(xml, self._settings.idp_entity_id)
        except (httpx.HTTPError, ValueError, ConfigError) as exc:
            self.last_error = describe_failure(exc)
            log.error(
                "saml-gate: idp_metadata refresh from %s failed, keeping the current copy: %s",
                self._source,
                self.last_error,
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

    async def refetch_for_unknown_key(self, seen: IdpInfo) -> bool:
        """A Response was signed with a certificate that ``seen`` (the metadata it was checked
        with) lacks: the IdP may have rolled its key over. True when newer metadata than ``seen``
        is now in use, so the same Response is worth verifying again. Fetches at once for a URL
        source, at most once per ``MIN_REFRESH`` seconds (concurrent sign-ins share one fetch;
        forged Responses cannot make the gate hammer the IdP)."""
        if not self.is_url:
            return False
        if self._refetch_lock is None:
            self._refetch_lock = anyio.Lock()
        async with self._refetch_lock:
            if self.current is not seen:  # adopted while this Response was being checked
                return True
            now = self._settings.clock()
            if self._refetched_at is not None and now - self._refetched_at < MIN_REFRESH:
                return False
            self._refetched_at = now
            log.warning(
                "saml-gate: a Response is signed with a certificate not in the IdP metadata;"
                " refetching %s now (key rollover?)",
                self._source,
                extra={"event": "metadata_refetch"},
            )
            return await self.refresh_now()

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
