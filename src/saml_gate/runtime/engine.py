"""The one way the gate does its SAML work: every message from the IdP is parsed and
signature-checked, and every message to it built, by an engine.

:class:`ProcessEngine` (``verify_isolation="process"``) does it in child processes, so a C
library (lxml, libxmlsec) crashing on hostile input ends a child, not the app: the Responses
posted to ``/acs`` and the logout messages to the unauthenticated ``/slo`` alike.
:class:`ThreadEngine` (``"thread"``) does it in threads of this process. The gate chooses one at
start-up (:func:`engine_for`); both bound the work in flight by ``verify_concurrency``
(``verify_slots``: 0 resolved).
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Collection, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import anyio
import anyio.to_thread

from saml_gate.errors import GateError
from saml_gate.runtime.worker_wire import (
    login_from_wire,
    logout_message_from_wire,
    logout_request_from_wire,
    logout_response_from_wire,
    request_url_from_wire,
)
from saml_gate.runtime.workers import WorkerFailed, WorkerPool, WorkersUnavailable, shared_pool
from saml_gate.saml.bindings import decode_form_value

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings
    from saml_gate.runtime.workers import WorkSpec
    from saml_gate.saml.idp import IdpInfo
    from saml_gate.saml.logout import IdpLogoutMessage, LogoutVerifier
    from saml_gate.saml.response import ResponseVerifier, VerifiedLogin
    from saml_gate.saml.sp import ServiceProvider
    from saml_gate.user import SamlUser

__all__ = ["Engine", "ProcessEngine", "SamlParts", "ThreadEngine", "engine_for"]

log = logging.getLogger("saml_gate")
_T = TypeVar("_T")


class SamlParts(Protocol):
    """The current IdP's SAML objects, read at each call: a metadata refresh replaces them
    (requests in flight keep those they already hold). :class:`~saml_gate.runtime.saml_state.
    LiveSaml` is the gate's."""

    settings: GateSettings

    @property
    def idp(self) -> IdpInfo: ...

    @property
    def verifier(self) -> ResponseVerifier: ...

    @property
    def sp(self) -> ServiceProvider: ...

    @property
    def logout_verifier(self) -> LogoutVerifier: ...

    @property
    def work_spec(self) -> WorkSpec: ...

    async def refetch_signing_keys(self, seen: IdpInfo) -> bool: ...


class Engine(ABC):
    """Reads what the IdP sends and builds what goes to it, off the event loop."""

    _parts: SamlParts

    async def verify_response(
        self, posted_value: str, expected_ids: Collection[str], now: float, client_address: str
    ) -> VerifiedLogin:
        """The verified login in a SAMLResponse as posted (still form-encoded: decoding is part
        of the work). ``client_address``: the client as ``trusted_proxies`` resolve it, or "".

        Signed with a certificate the metadata lacks (an IdP key rollover): a metadata URL is
        refetched at once (rate-limited), and when newer metadata came, the same Response is
        verified once more with it, so the sign-in is not lost."""
        seen = self._parts.idp
        try:
            return await self._verify(posted_value, expected_ids, now, client_address)
        except GateError as error:
            if error.code != "unknown_signing_certificate":
                raise
            if not await self._parts.refetch_signing_keys(seen):
                raise
        log.info("saml-gate: verifying the Response again with the refetched IdP metadata")
        return await self._verify(posted_value, expected_ids, now, client_address)

    @abstractmethod
    async def _verify(
        self, posted_value: str, expected_ids: Collection[str], now: float, client_address: str
    ) -> VerifiedLogin:
        """:meth:`verify_response` with the current metadata only."""

    @abstractmethod
    async def authn_request_url(
        self, relay_state: str, force_authn: bool, is_passive: bool = False
    ) -> tuple[str, str]:
        """(request ID, the IdP URL carrying our AuthnRequest; IsPassive when asked)."""

    @abstractmethod
    async def read_logout_redirect(self, raw_query: str, now: float) -> IdpLogoutMessage:
        """The IdP's logout message sent with the HTTP-Redirect binding (query as received)."""

    @abstractmethod
    async def read_logout_post(self, form: Mapping[str, str], now: float) -> IdpLogoutMessage:
        """The IdP's logout message sent with the HTTP-POST binding."""

    @abstractmethod
    async def logout_request_url(self, user: SamlUser) -> tuple[str, str] | None:
        """(request ID, the IdP URL carrying our LogoutRequest), or None: the IdP has no SLO."""

    @abstractmethod
    async def logout_response_url(
        self, in_response_to: str, relay_state: str | None, success: bool
    ) -> str | None:
        """The IdP URL carrying our LogoutResponse, or None: the IdP has no SLO endpoint."""

    @property
    def workers(self) -> WorkerPool | None:
        """The pool of child processes in use; None when working in threads."""
        return None

    async def warm(self) -> None:
        """Get ready for the first sign-in (start children); run once in the background."""
        return None  # threads need no start-up


class ThreadEngine(Engine):
    """The work in threads of the app's process (``verify_isolation="thread"``)."""

    def __init__(self, parts: SamlParts) -> None:
        self._parts = parts
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Bounds the work in flight (created lazily: it needs a running loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._parts.settings.verify_slots)
        return self._limiter

    async def _in_thread(self, work: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(work, limiter=self.limiter)

    async def _verify(
        self, posted_value: str, expected_ids: Collection[str], now: float, client_address: str
    ) -> VerifiedLogin:
        verifier = self._parts.verifier
        return await self._in_thread(
            lambda: verifier.verify(
                decode_form_value(posted_value),
                expected_request_ids=expected_ids,
                now=now,
                client_address=client_address,
            )
        )

    async def authn_request_url(
        self, relay_state: str, force_authn: bool, is_passive: bool = False
    ) -> tuple[str, str]:
        sp = self._parts.sp
        return await self._in_thread(
            partial(
                sp.authn_request_url, relay_state, force_authn=force_authn, is_passive=is_passive
            )
        )

    async def read_logout_redirect(self, raw_query: str, now: float) -> IdpLogoutMessage:
        return await self._in_thread(
            partial(self._parts.logout_verifier.read_redirect, raw_query, now=now)
        )

    async def read_logout_post(self, form: Mapping[str, str], now: float) -> IdpLogoutMessage:
        return await self._in_thread(partial(self._parts.logout_verifier.read_post, form, now=now))

    async def logout_request_url(self, user: SamlUser) -> tuple[str, str] | None:
        return await self._in_thread(partial(self._parts.sp.logout_request_url, user))

    async def logout_response_url(
        self, in_response_to: str, relay_state: str | None, success: bool
    ) -> str | None:
        return await self._in_thread(
            partial(
                self._parts.sp.logout_response_url, in_response_to, relay_state, success=success
            )
        )


class ProcessEngine(Engine):
    """The work in child processes (``verify_isolation="process"``); in threads instead, with a
    warning, where no child process can be started."""

    def __init__(self, parts: SamlParts) -> None:
        self._parts = parts
        self._threads = ThreadEngine(parts)
        self._in_processes = True

    @property
    def workers(self) -> WorkerPool | None:
        """This process's pool; looked up on each use, not kept: a server that forks after
        building the app (gunicorn --preload) must use its own children, not its parent's."""
        return shared_pool() if self._in_processes else None

    async def _run(
        self,
        op: str,
        args: tuple[Any, ...],
        read: Callable[[Any], _T],
        in_thread: Callable[[], Awaitable[_T]],
    ) -> _T:
        """``op`` done by a child, its JSON answer checked and rebuilt by ``read``; done by
        ``in_thread`` when no child can be started here."""
        pool = self.workers
        if pool is not None:
            limiter = self._threads.limiter
            try:
                await _take_slot(limiter)
                try:
                    return await pool.ask(self._parts.work_spec, read, op, *args)
                finally:
                    limiter.release()
            except WorkersUnavailable as exc:
                self._no_workers(exc)
            except WorkerFailed as exc:
                log.error(
                    "saml-gate: a verification worker process failed (%s); it is replaced", exc,
                    extra={"event": "worker_failed"},
                )  # fmt: skip
                raise
        return await in_thread()

    async def _verify(
        self, posted_value: str, expected_ids: Collection[str], now: float, client_address: str
    ) -> VerifiedLogin:
        args = (posted_value, sorted(expected_ids), now, client_address)
        return await self._run(
            "verify", args, login_from_wire, partial(self._threads._verify, *args)
        )

    async def authn_request_url(
        self, relay_state: str, force_authn: bool, is_passive: bool = False
    ) -> tuple[str, str]:
        args = (relay_state, force_authn, is_passive)
        return await self._run(
            "authn_request",
            args,
            request_url_from_wire,
            partial(self._threads.authn_request_url, *args),
        )

    async def read_logout_redirect(self, raw_query: str, now: float) -> IdpLogoutMessage:
        return await self._run(
            "logout_redirect",
            (raw_query, now),
            logout_message_from_wire,
            partial(self._threads.read_logout_redirect, raw_query, now),
        )

    async def read_logout_post(self, form: Mapping[str, str], now: float) -> IdpLogoutMessage:
        return await self._run(
            "logout_post",
            (dict(form), now),
            logout_message_from_wire,
            partial(self._threads.read_logout_post, form, now),
        )

    async def logout_request_url(self, user: SamlUser) -> tuple[str, str] | None:
        # only what the LogoutRequest names: the child gets no attributes of the user
        args = (user.name_id, user.name_id_format, user.session_index)
        return await self._run(
            "logout_request",
            args,
            logout_request_from_wire,
            partial(self._threads.logout_request_url, user),
        )

    async def logout_response_url(
        self, in_response_to: str, relay_state: str | None, success: bool
    ) -> str | None:
        args = (in_response_to, relay_state, success)
        return await self._run(
            "logout_response",
            args,
            logout_response_from_wire,
            partial(self._threads.logout_response_url, *args),
        )

    async def warm(self) -> None:
        """Start the child processes and build this configuration in them, before any sign-in."""
        pool = self.workers
        if pool is None:
            return
        # The warm-up holds every slot of the limiter while it starts the children, so a sign-in
        # arriving meanwhile waits for one of them instead of starting a child of its own (which
        # would then stay idle for the server's life).
        limiter, slots = self._threads.limiter, self._parts.settings.verify_slots
        held: list[object] = []
        try:
            for _ in range(slots):
                lease = object()
                await limiter.acquire_on_behalf_of(lease)
                held.append(lease)
            await pool.warm(self._parts.work_spec, slots)
        except WorkersUnavailable as exc:
            self._no_workers(exc)
        except Exception as exc:  # a sign-in will try, and report, again
            log.warning("saml-gate: could not warm the verification workers: %s", exc)
        finally:
            for lease in held:
                limiter.release_on_behalf_of(lease)

    def _no_workers(self, exc: Exception) -> None:
        if self._in_processes:
            self._in_processes = False
            log.warning(
                "saml-gate cannot start verification worker processes (%s): verifying in"
                " threads of this process instead; set verify_isolation='thread' to say so",
                exc,
                extra={"event": "workers_unavailable"},
            )


async def _take_slot(limiter: anyio.CapacityLimiter) -> None:
    """A slot of ``limiter`` for this task: at once when one is free (``acquire`` would pass
    through the event loop even then: a loop turn per sign-in), else waiting in line."""
    try:
        limiter.acquire_nowait()
    except anyio.WouldBlock:
        await limiter.acquire()


def engine_for(parts: SamlParts) -> Engine:
    """The engine ``verify_isolation`` asks for."""
    if parts.settings.verify_isolation == "process":
        return ProcessEngine(parts)
    return ThreadEngine(parts)
