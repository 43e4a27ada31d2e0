"""The gate's parts, built and checked once from the settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from saml_gate.config.settings import GateSettings
from saml_gate.ops.agreement import GateAgreement
from saml_gate.ops.events import EventSink
from saml_gate.ops.logs import install_log_defaults
from saml_gate.ops.metrics import GateMetrics
from saml_gate.ops.warnings import StartupWarnings
from saml_gate.runtime.background import BackgroundJob
from saml_gate.runtime.engine import Engine, engine_for
from saml_gate.runtime.heap import freeze_startup_heap
from saml_gate.runtime.workers import WorkerPool, WorkSpec
from saml_gate.saml.idp import IdpInfo, parse_idp_metadata
from saml_gate.saml.idp_source import IdpMetadataSource
from saml_gate.saml.logout import LogoutVerifier
from saml_gate.saml.process_policy import install_process_policy
from saml_gate.saml.response import ResponseVerifier
from saml_gate.saml.sp import ServiceProvider, load_sp_keys
from saml_gate.session.relay import RelayTracker
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import SessionCodec
from saml_gate.store import MemoryStore, Store, open_store
from saml_gate.store.guard import GuardedStore

if TYPE_CHECKING:
    from saml_gate.devidp import DevIdP

log = logging.getLogger("saml_gate")


class GateCore:
    """Settings plus everything derived from them; shared by the middleware and the endpoints."""

    def __init__(self, settings: GateSettings, store: Any = None) -> None:
        """``store``: a Store or a redis.asyncio.Redis client; None builds the ``store`` setting."""
        install_process_policy()  # before any XML reaches libxmlsec in this process
        install_log_defaults()  # auth events visible under plain uvicorn; no SAML in logs
        self.settings = settings
        self.store: Store = open_store(settings, store)
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
        self.sessions = SessionCodec(settings, self.store, issuer=lambda: self.idp.entity_id)
        self.revocations = Revocations(self.store, settings)
        self.relay = RelayTracker(settings)
        self.engine: Engine = engine_for(self)
        """Does all the SAML work, in child processes or threads (verify_isolation)."""
        self.metrics: GateMetrics | None = None
        if settings.metrics_path is not None or settings.metrics_registry is not None:
            self.metrics = GateMetrics(settings.metrics_registry)
            self.metrics.bind(self, settings.clock)
            if isinstance(self.store, GuardedStore):
                self.store.on_failure = self.metrics.store_errors.inc
        self.events = EventSink(settings.on_event, self.metrics)
        self._warm = BackgroundJob(self.engine.warm)
        self.warnings = StartupWarnings(self)
        self.warnings.check()
        self.agreement = GateAgreement(self)

    def use_idp(self, idp: IdpInfo) -> None:
        """Adopt (new) IdP metadata: requests in flight keep the objects they already hold."""
        self.idp = idp
        self.sp = ServiceProvider(self.settings, idp, self.sp_keys)
        self.verifier = ResponseVerifier(self.settings, idp, self.sp_keys.key_pem)
        self.logout_verifier = LogoutVerifier(self.settings, idp)
        self.work_spec = WorkSpec.of(self.settings, idp, self.sp_keys)

    async def refetch_signing_keys(self, seen: IdpInfo) -> bool:
        """After ``unknown_signing_certificate``: refetch a metadata URL at once (rate-limited);
        True when newer metadata than ``seen`` is in use and the Response is worth re-verifying."""
        if self.idp_source is None:
            return False
        return await self.idp_source.refetch_for_unknown_key(seen)

    @property
    def workers(self) -> WorkerPool | None:
        """This process's pool of verification children; None when working in threads."""
        return self.engine.workers

    def start_background(self) -> None:
        """Start background work (metadata refresh); idempotent, needs a running loop."""
        if self.settings.gc_freeze:
            freeze_startup_heap()
        self._warm.start()
        self.revocations.start()
        if self.idp_source is not None:
            self.idp_source.start()
        self.warnings.start()
        self.agreement.start()  # gates sharing the store compare their keys and secrets

    async def stop_background(self) -> None:
        await self._warm.stop()
        await self.warnings.stop()
        await self.agreement.stop()
        await self.revocations.stop()
        if self.idp_source is not None:
            await self.idp_source.stop()
        if not isinstance(self.store, MemoryStore):  # the memory store is the state itself
            await self.store.close()

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
