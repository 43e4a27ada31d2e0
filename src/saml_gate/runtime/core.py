"""The gate's running parts and their lifecycle: built without I/O, started once, stopped once.

:func:`saml_gate.web.assembly.assemble` builds them (every constructor only checks and wires);
:meth:`GateCore.start` does the start-up work — the process-wide policies and log handlers, the
SP and JWT keys, the IdP metadata, the start-up warnings, the verification children and the
background jobs — in the gate's lifespan startup, or on its first request where no lifespan runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio.to_thread

from saml_gate.background import BackgroundJob
from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.identity.keys import load_jwt_keys
from saml_gate.identity.tokens import IdentityTokens
from saml_gate.ops.agreement import GateAgreement
from saml_gate.ops.events import EventSink
from saml_gate.ops.logs import install_log_defaults
from saml_gate.ops.metrics import GateMetrics
from saml_gate.ops.warnings import StartupWarnings
from saml_gate.runtime.engine import Engine
from saml_gate.runtime.heap import freeze_startup_heap
from saml_gate.runtime.policy_reload import PolicyReload
from saml_gate.runtime.remote_keys import RemoteKeySet
from saml_gate.runtime.saml_state import LiveSaml
from saml_gate.runtime.workers import WorkerPool
from saml_gate.saml.process_policy import install_process_policy
from saml_gate.session.relay import RelayTracker
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import SessionCodec
from saml_gate.store import MemoryStore, Store

log = logging.getLogger("saml_gate")


@dataclass(eq=False)
class GateCore:
    """What a gate runs on, shared by the request decision and the endpoints (each of which is
    handed the parts it uses, not this object)."""

    settings: GateSettings
    store: Store
    saml: LiveSaml
    sessions: SessionCodec
    revocations: Revocations
    relay: RelayTracker
    engine: Engine
    """Does all the SAML work, in child processes or threads (verify_isolation)."""
    events: EventSink
    metrics: GateMetrics | None
    warnings: StartupWarnings
    agreement: GateAgreement
    """Gates sharing the store compare their keys and secrets (start-up, then periodically)."""
    tokens: IdentityTokens
    universal_logout_keys: RemoteKeySet | None = None
    """The Okta org's keys, where Universal Logout is on (``universal_logout_issuer``)."""
    access_token_keys: RemoteKeySet | None = None
    """The authorization server's keys, where IdP access tokens are on (``access_token_issuer``)."""
    policy_reload: PolicyReload | None = None
    """Reloads the access policy when the configuration file changes (where there is one)."""
    loaded: bool = field(default=False, init=False)
    """The start-up loading is done (the IdP metadata, the keys)."""
    started: bool = field(default=False, init=False)
    """The background work runs."""
    _warm: BackgroundJob = field(init=False)

    def __post_init__(self) -> None:
        self._warm = BackgroundJob(self.engine.warm)

    @property
    def _key_sets(self) -> tuple[RemoteKeySet, ...]:
        """The signers' key sets this gate fetches and refreshes."""
        return tuple(k for k in (self.universal_logout_keys, self.access_token_keys) if k)

    @property
    def workers(self) -> WorkerPool | None:
        """This process's pool of verification children; None when working in threads."""
        return self.engine.workers

    async def start(self) -> None:
        """The start-up work, once: what is loaded stays loaded; the background work starts in
        the running event loop, the one the gate serves from. Raises :class:`ConfigError`
        naming the setting at fault."""
        if self.started:
            return
        await self.load()
        self.started = True
        if self.settings.gc_freeze:
            freeze_startup_heap()
        self._warm.start()
        self.revocations.start()
        self.saml.start()
        self.warnings.start()
        self.agreement.start()  # gates sharing the store compare their keys and secrets
        for key_set in self._key_sets:
            key_set.start()
        if self.policy_reload is not None:
            await self.policy_reload.start()

    async def load(self) -> None:
        """The start-up loading alone (idempotent): what :meth:`start` does before it starts the
        background work. A command that wants a bad setting said before it serves loads first."""
        if self.loaded:
            return
        install_process_policy()  # before any XML reaches libxmlsec in this process
        install_log_defaults()  # auth events visible under plain uvicorn; no SAML in logs
        await self.saml.load()
        try:
            keys = await anyio.to_thread.run_sync(load_jwt_keys, self.settings)
        except OSError as exc:  # a development key that cannot be written to state_dir
            raise ConfigError("state_dir", f"{self.settings.state_dir}: {exc}") from exc
        self.tokens.use_keys(keys)
        for key_set in self._key_sets:
            await key_set.load()
        self.warnings.check()
        idp = self.saml.idp
        log.info(
            "saml-gate started: %s, trusting the IdP %s",
            self.settings.base_url,
            idp.entity_id,
            extra={"event": "started", "issuer": idp.entity_id},
        )
        self.loaded = True

    async def stop(self) -> None:
        """Stop the background work and close the store (idempotent); what was loaded stays."""
        if not self.started:
            return
        self.started = False
        await self._warm.stop()
        await self.warnings.stop()
        await self.agreement.stop()
        await self.revocations.stop()
        await self.saml.stop()
        for key_set in self._key_sets:
            await key_set.stop()
        if self.policy_reload is not None:
            await self.policy_reload.stop()
        if not isinstance(self.store, MemoryStore):  # the memory store is the state itself
            await self.store.close()
