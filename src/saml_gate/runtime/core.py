"""The gate's parts, built and checked once from the settings."""

from __future__ import annotations

import gc
import logging
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from saml_gate.config.settings import GateSettings
from saml_gate.ops.events import EventSink
from saml_gate.ops.metrics import GateMetrics
from saml_gate.ops.warnings import StartupWarnings
from saml_gate.runtime.background import BackgroundJob
from saml_gate.runtime.workers import (
    WorkerFailed,
    WorkerPool,
    WorkersUnavailable,
    WorkSpec,
    login_from_wire,
    shared_pool,
)
from saml_gate.saml.idp import IdpInfo, parse_idp_metadata
from saml_gate.saml.idp_source import IdpMetadataSource
from saml_gate.saml.logout import LogoutVerifier
from saml_gate.saml.response import ResponseVerifier, VerifiedLogin
from saml_gate.saml.sp import ServiceProvider, load_sp_keys
from saml_gate.session.relay import RelayTracker
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import SessionCodec
from saml_gate.store import MemoryStore, Store, open_store
from saml_gate.store.guard import GuardedStore
from saml_gate.web.forms import decode_form_value

if TYPE_CHECKING:
    from saml_gate.devidp import DevIdP

log = logging.getLogger("saml_gate")
_NO_WORKERS: Any = object()


class GateCore:
    """Settings plus everything derived from them; shared by the middleware and the endpoints."""

    def __init__(self, settings: GateSettings, store: Any = None) -> None:
        """``store``: a Store or a redis.asyncio.Redis client; None builds the ``store`` setting."""
        self.settings = settings
        self.store: Store = open_store(settings, store)
        self.sp_keys = load_sp_keys(settings)
        self._in_processes = settings.verify_isolation == "process"
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
        self._verify_limiter: anyio.CapacityLimiter | None = None
        self.metrics: GateMetrics | None = None
        if settings.metrics_path is not None or settings.metrics_registry is not None:
            self.metrics = GateMetrics(settings.metrics_registry)
            self.metrics.bind(self, settings.clock)
            if isinstance(self.store, GuardedStore):
                self.store.on_failure = self.metrics.store_errors.inc
        self.events = EventSink(settings.on_event, self.metrics)
        self._warm = BackgroundJob(self._warm_workers)
        self.warnings = StartupWarnings(self)
        self.warnings.check()

    def use_idp(self, idp: IdpInfo) -> None:
        """Adopt (new) IdP metadata: requests in flight keep the objects they already hold."""
        self.idp = idp
        self.sp = ServiceProvider(self.settings, idp, self.sp_keys)
        self.verifier = ResponseVerifier(self.settings, idp, self.sp_keys.key_pem)
        self.logout_verifier = LogoutVerifier(self.settings, idp, self.sp_keys.key_pem)
        self.work_spec = WorkSpec.of(self.settings, idp, self.sp_keys)

    # ------------------------------------------------------------------ CPU-heavy SAML work
    async def verify_response(
        self,
        posted_value: str,
        expected_request_ids: Collection[str],
        now: float,
        client_address: str,
    ) -> VerifiedLogin:
        """The verifier's answer for a SAMLResponse as posted (still form-encoded: decoding is
        part of the work), computed in a worker process or thread (verify_isolation).
        ``client_address``: the client as ``trusted_proxies`` resolve it ("" when unknown)."""
        wire = await self._in_worker(
            "verify", posted_value, sorted(expected_request_ids), now, client_address
        )
        if wire is not _NO_WORKERS:
            return login_from_wire(wire)
        verifier = self.verifier
        return await anyio.to_thread.run_sync(
            lambda: verifier.verify(
                decode_form_value(posted_value),
                expected_request_ids=expected_request_ids,
                now=now,
                client_address=client_address,
            ),
            limiter=self.verify_limiter,
        )

    async def authn_request_url(self, relay_state: str, force_authn: bool) -> tuple[str, str]:
        """(request ID, IdP URL with the AuthnRequest), built by pysaml2 off the event loop."""
        found = await self._in_worker("authn_request", relay_state, force_authn)
        if found is not _NO_WORKERS:
            return str(found[0]), str(found[1])
        sp = self.sp
        return await anyio.to_thread.run_sync(
            lambda: sp.authn_request_url(relay_state, force_authn=force_authn),
            limiter=self.verify_limiter,
        )

    @property
    def workers(self) -> WorkerPool | None:
        """This process's pool of verification children; None when working in threads.

        Looked up on each use, not kept: a server that forks after building the app (gunicorn
        --preload) must use its own children, not its parent's."""
        return shared_pool() if self._in_processes else None

    async def _in_worker(self, op: str, *args: Any) -> Any:
        """The child's answer, or _NO_WORKERS when this gate works in threads (by its settings,
        or because child processes cannot be started here)."""
        workers, spec = self.workers, self.work_spec
        if workers is None:
            return _NO_WORKERS
        try:
            async with self.verify_limiter:
                return await workers.run(spec, op, *args)
        except WorkersUnavailable as exc:
            self._no_workers(exc)
            return _NO_WORKERS
        except WorkerFailed as exc:
            log.error(
                "saml-gate: a verification worker process failed (%s); it is replaced", exc,
                extra={"event": "worker_failed"},
            )  # fmt: skip
            raise

    async def _warm_workers(self) -> None:
        """Start the child processes and build this configuration in them, before any sign-in."""
        workers = self.workers
        if workers is None:
            return
        try:
            await workers.warm(self.work_spec, self.settings.verify_concurrency)
        except WorkersUnavailable as exc:
            self._no_workers(exc)
        except Exception as exc:  # a sign-in will try, and report, again
            log.warning("saml-gate: could not warm the verification workers: %s", exc)

    def _no_workers(self, exc: Exception) -> None:
        if self._in_processes:
            self._in_processes = False
            log.warning(
                "saml-gate cannot start verification worker processes (%s): verifying in"
                " threads of this process instead; set verify_isolation='thread' to say so",
                exc,
                extra={"event": "workers_unavailable"},
            )

    def start_background(self) -> None:
        """Start background work (metadata refresh); idempotent, needs a running loop."""
        freeze_startup_heap()
        self._warm.start()
        if self.idp_source is not None:
            self.idp_source.start()
        self.warnings.start()

    async def stop_background(self) -> None:
        await self._warm.stop()
        await self.warnings.stop()
        if self.idp_source is not None:
            await self.idp_source.stop()
        if not isinstance(self.store, MemoryStore):  # the memory store is the state itself
            await self.store.close()

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


def freeze_startup_heap() -> None:
    """``gc.freeze()``, once per process, when the gate starts serving.

    The imports (pysaml2's schema modules above all) leave some 80,000 long-lived objects,
    and every full collection walked them with all threads stopped: 20-60 ms, the longest
    event-loop stall the benchmark's sign-in storm measured. Frozen objects are never
    collected as cycles but are still freed by reference counting.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.freeze()


_heap_frozen = False
