"""The gate's parts, built and checked once from the settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from saml_gate.idp import IdpInfo, parse_idp_metadata
from saml_gate.idp_source import IdpMetadataSource
from saml_gate.relay import RelayTracker
from saml_gate.session import SessionCodec
from saml_gate.settings import GateSettings
from saml_gate.sp import ServiceProvider, load_sp_keys
from saml_gate.store import MemoryStore, Store
from saml_gate.verify import ResponseVerifier

if TYPE_CHECKING:
    from saml_gate.devidp import DevIdP

log = logging.getLogger("saml_gate")


class GateCore:
    """Settings plus everything derived from them; shared by the middleware and the endpoints."""

    def __init__(self, settings: GateSettings, store: Store | None = None) -> None:
        self.settings = settings
        self.store: Store = store if store is not None else MemoryStore(clock=settings.clock)
        self.sp_keys = load_sp_keys(settings)
        self.devidp: DevIdP | None = None
        self.idp_source: IdpMetadataSource | None = None
        if settings.dev_idp:
            self.devidp = self._build_devidp()
            idp = parse_idp_metadata(self.devidp.metadata_xml().decode(), settings.idp_entity_id)
        else:
            self.idp_source = IdpMetadataSource(settings, on_change=self.use_idp)
            idp = self.idp_source.load_initial()
        self.use_idp(idp)
        self.sessions = SessionCodec(settings)
        self.relay = RelayTracker(settings)
        self._verify_limiter: anyio.CapacityLimiter | None = None

    def use_idp(self, idp: IdpInfo) -> None:
        """Adopt (new) IdP metadata: requests in flight keep the objects they already hold."""
        self.idp = idp
        self.sp = ServiceProvider(self.settings, idp, self.sp_keys)
        self.verifier = ResponseVerifier(self.settings, idp, self.sp_keys.key_pem)

    def start_background(self) -> None:
        """Start background work (metadata refresh); idempotent, needs a running loop."""
        if self.idp_source is not None:
            self.idp_source.start()

    async def stop_background(self) -> None:
        if self.idp_source is not None:
            await self.idp_source.stop()

    @property
    def verify_limiter(self) -> anyio.CapacityLimiter:
        """Bounds CPU-heavy XML work in threads (created lazily: it needs a running loop)."""
        if self._verify_limiter is None:
            self._verify_limiter = anyio.CapacityLimiter(self.settings.verify_concurrency)
        return self._verify_limiter

    def _build_devidp(self) -> DevIdP:
        from saml_gate.devidp import DevIdP, load_or_create_keypair

        s = self.settings
        keypair, _ = load_or_create_keypair(
            Path(s.state_dir).expanduser(), "devidp", "saml-gate development IdP"
        )
        return DevIdP(
            public_url=s.devidp_url,
            mount_path=s.prefix + "/devidp",
            keypair=keypair,
            sp_entity_id=s.entity_id,
            sp_acs_url=s.acs_url,
            encrypt_to=None,
            clock=s.clock,
        )
