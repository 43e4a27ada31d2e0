"""The SAML side of a running gate: the SP key pair, the current IdP, and what is built from both.

Nothing here is loaded when a gate is built: :meth:`LiveSaml.load` does it at start-up (the
gate's lifespan startup, or its first request where no lifespan runs): the SP key pair from
``sp_key``/``sp_cert`` or ``state_dir``, the IdP metadata from the development IdP or from
:class:`~saml_gate.runtime.idp_source.IdpMetadataSource`. A metadata refresh replaces the whole
:class:`SamlState` in one assignment, so a request in flight keeps the objects it already holds
and never mixes two IdPs' (the engine, the ACS, the status pages read it at each use).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.runtime.idp_source import IdpMetadataSource
from saml_gate.runtime.workers import WorkSpec
from saml_gate.saml.idp import IdpInfo, parse_idp_metadata
from saml_gate.saml.pem_keys import SpKeys
from saml_gate.saml.sp import ServiceProvider, load_sp_keys

if TYPE_CHECKING:
    from saml_gate.devidp import DevIdP
    from saml_gate.saml.logout import LogoutVerifier
    from saml_gate.saml.response import ResponseVerifier

log = logging.getLogger("saml_gate")


class NotStarted(RuntimeError):
    """The gate's SAML side was used before its start-up loaded it."""


@dataclass(frozen=True)
class SamlState:
    """One IdP's SAML objects, built together from its metadata and the SP key pair. The
    verifiers are built where they are used: at once when verifying in threads, else on first
    use only (the work is the children's; this process then loads neither libxmlsec nor the
    XSD, about 5 MB)."""

    keys: SpKeys
    idp: IdpInfo
    sp: ServiceProvider
    work_spec: WorkSpec
    settings: GateSettings = field(repr=False)

    @classmethod
    def of(cls, settings: GateSettings, idp: IdpInfo, keys: SpKeys) -> SamlState:
        state = cls(
            keys=keys,
            idp=idp,
            sp=ServiceProvider(settings, idp, keys),
            work_spec=WorkSpec.of(settings, idp, keys),
            settings=settings,
        )
        if settings.verify_isolation != "process":  # the engine verifies in threads
            assert state.verifier is not None and state.logout_verifier is not None
        return state

    @cached_property
    def verifier(self) -> ResponseVerifier:
        from saml_gate.saml.response import ResponseVerifier

        return ResponseVerifier(self.settings, self.idp, self.keys.key_pem)

    @cached_property
    def logout_verifier(self) -> LogoutVerifier:
        from saml_gate.saml.logout import LogoutVerifier

        return LogoutVerifier(self.settings, self.idp)


class LiveSaml:
    """The SAML state in use (see the module docstring); what the engine reads
    (:class:`~saml_gate.runtime.engine.SamlParts`)."""

    def __init__(self, settings: GateSettings) -> None:
        self.settings = settings
        self.source = None if settings.dev_idp else IdpMetadataSource(settings, self.use_idp)
        """Where the IdP metadata comes from; None with the development IdP."""
        self.devidp: DevIdP | None = None
        """The development IdP (``dev_idp``), built at start-up."""
        self.current: SamlState | None = None
        """The state in use (None before start-up loads it); replaced whole, never changed."""

    @property
    def loaded(self) -> bool:
        return self.current is not None

    @property
    def state(self) -> SamlState:
        state = self.current
        if state is None:
            raise NotStarted(
                "the gate has not started: its lifespan startup (or its first request) loads"
                " the IdP metadata and keys; call `await gate.start()` to start it yourself"
            )
        return state

    @property
    def idp(self) -> IdpInfo:
        return self.state.idp

    @property
    def sp(self) -> ServiceProvider:
        return self.state.sp

    @property
    def verifier(self) -> ResponseVerifier:
        return self.state.verifier

    @property
    def logout_verifier(self) -> LogoutVerifier:
        return self.state.logout_verifier

    @property
    def work_spec(self) -> WorkSpec:
        return self.state.work_spec

    @property
    def keys(self) -> SpKeys:
        return self.state.keys

    async def load(self) -> None:
        """Start-up: the SP key pair and the IdP metadata. Raises :class:`ConfigError` naming
        the setting at fault (a file that is not there, a URL that never answered...)."""
        s = self.settings
        try:
            keys = await anyio.to_thread.run_sync(load_sp_keys, s)
            if self.source is None:
                self.devidp = await anyio.to_thread.run_sync(self._build_devidp)
                idp = parse_idp_metadata(self.devidp.metadata_xml().decode(), s.idp_entity_id)
            else:
                idp = await self.source.load_initial()
        except OSError as exc:  # state_dir not writable, half a key pair...
            raise ConfigError("state_dir", f"{s.state_dir}: {exc}") from exc
        self.current = await anyio.to_thread.run_sync(SamlState.of, s, idp, keys)

    def use_idp(self, idp: IdpInfo) -> None:
        """Adopt (new) IdP metadata: every object built from it is replaced at once."""
        self.current = SamlState.of(self.settings, idp, self.state.keys)

    async def refetch_signing_keys(self, seen: IdpInfo) -> bool:
        """After ``unknown_signing_certificate``: refetch a metadata URL at once (rate-limited);
        True when newer metadata than ``seen`` is in use and the Response is worth re-verifying."""
        if self.source is None:
            return False
        return await self.source.refetch_for_unknown_key(seen)

    def metadata_status(self, now: float) -> dict[str, Any]:
        """Where the metadata came from, how old it is, and the last refresh error."""
        source = self.source
        if source is None:
            return {"source": "development IdP"}
        return {
            "source": "url" if source.is_url else "file or inline",
            "age_seconds": round(now - source.loaded_at, 1) if source.loaded_at else None,
            "last_error": source.last_error,
        }

    def metadata_age(self, now: float) -> float:
        source = self.source
        return now - source.loaded_at if source is not None and source.loaded_at else 0.0

    def start(self) -> None:
        """Start refreshing a metadata URL in the background (needs a running loop)."""
        if self.source is not None:
            self.source.start()

    async def stop(self) -> None:
        if self.source is not None:
            await self.source.stop()

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
