"""What runs in a verification child process: its main loop and the work it does.

The parent (:mod:`saml_gate.runtime.workers`) has :mod:`saml_gate.runtime.zygote` fork it, or
starts ``python -c`` calling :func:`serve` where there is no zygote. The
child reads pickled requests from stdin and writes JSON answers to stdout, one at a time, and
keeps the verifiers and message builders it built for the last few gate configurations. Its
operations are those of :class:`saml_gate.runtime.engine.ProcessEngine`. It imports only what
that work needs: no pysaml2 until a logout message is built, nothing of the app's side (the pool,
anyio, Starlette); tests/test_workers.py checks it in a fresh process.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import traceback
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from saml_gate.errors import GateError
from saml_gate.runtime.heap import freeze_startup_heap
from saml_gate.runtime.worker_wire import (
    READY,
    login_to_wire,
    logout_message_to_wire,
    read_frame,
    write_frame,
)
from saml_gate.saml.bindings import decode_form_value
from saml_gate.saml.process_policy import install_process_policy

if TYPE_CHECKING:
    from collections.abc import Mapping

    from saml_gate.saml.logout import LogoutVerifier
    from saml_gate.saml.outgoing import AuthnRequests
    from saml_gate.saml.response import ResponseVerifier
    from saml_gate.saml.sp import ServiceProvider

SPECS_PER_CHILD = 8
"""Gate configurations a child keeps built (each its verifiers and message builders)."""


class _Jobs:
    """A child's verifiers and message builders for one spec, each built on first use."""

    def __init__(self, payload: bytes) -> None:
        self.settings, self.idp, self.keys = pickle.loads(payload)  # noqa: S301 (the parent's)

    @cached_property
    def verifier(self) -> ResponseVerifier:
        from saml_gate.saml.response import ResponseVerifier

        return ResponseVerifier(self.settings, self.idp, self.keys.key_pem)

    @cached_property
    def sp(self) -> ServiceProvider:
        from saml_gate.saml.sp import ServiceProvider

        return ServiceProvider(self.settings, self.idp, self.keys)

    def verify(
        self, posted_value: str, expected: list[str], now: float, client_address: str
    ) -> dict[str, Any]:
        """Decode the form value as posted, then verify the Response."""
        saml_response = decode_form_value(posted_value)
        login = self.verifier.verify(
            saml_response,
            expected_request_ids=set(expected),
            now=now,
            client_address=client_address,
        )
        return login_to_wire(login)

    @cached_property
    def logout_verifier(self) -> LogoutVerifier:
        from saml_gate.saml.logout import LogoutVerifier

        return LogoutVerifier(self.settings, self.idp)

    @cached_property
    def authn_requests(self) -> AuthnRequests:
        from saml_gate.saml.outgoing import AuthnRequests

        return AuthnRequests(self.settings, self.idp, self.keys.key_pem)

    def authn_request(
        self, relay_state: str, force_authn: bool, is_passive: bool = False
    ) -> list[str]:
        return list(
            self.authn_requests.url(relay_state, force_authn=force_authn, is_passive=is_passive)
        )

    def logout_redirect(self, raw_query: str, now: float) -> dict[str, Any]:
        return logout_message_to_wire(self.logout_verifier.read_redirect(raw_query, now=now))

    def logout_post(self, form: Mapping[str, str], now: float) -> dict[str, Any]:
        return logout_message_to_wire(self.logout_verifier.read_post(form, now=now))

    def logout_request(
        self, name_id: str, name_id_format: str | None, session_index: str | None
    ) -> list[str] | None:
        from saml_gate.user import SamlUser

        user = SamlUser(
            name_id=name_id,
            email=None,
            name=None,
            groups=(),
            name_id_format=name_id_format,
            session_index=session_index,
        )
        found = self.sp.logout_request_url(user)
        return None if found is None else list(found)

    def logout_response(
        self, in_response_to: str, relay_state: str | None, success: bool
    ) -> str | None:
        return self.sp.logout_response_url(in_response_to, relay_state, success=success)

    def prepare(self) -> None:
        """Build what sign-ins use now (the parent warms children at start-up). pysaml2's
        client, for the logout messages of Single Logout only, is built on the first of them:
        a child that never builds one never imports pysaml2 (about 21 MB)."""
        for built in (self.verifier, self.authn_requests, self.logout_verifier):
            assert built is not None


OPERATIONS: Final = frozenset(
    {
        "verify",
        "authn_request",
        "logout_redirect",
        "logout_post",
        "logout_request",
        "logout_response",
        "prepare",
    }
)


def serve(specs: OrderedDict[str, _Jobs] | None = None) -> None:
    """A child's main loop: one request at a time from stdin, one answer each to stdout.

    ``specs``: those a zygote built before forking this child (shared with it copy-on-write).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's; we end at EOF
    if hasattr(signal, "SIGHUP"):  # a reload signal sent to the process group is the gate's
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    requests = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library that prints must not corrupt the answers
    with open(os.devnull, "rb") as devnull:
        os.dup2(devnull.fileno(), 0)
    from saml_gate.saml.schema import one_validation_at_a_time  # not in the app's process

    install_process_policy()  # before any XML reaches libxmlsec in this process
    one_validation_at_a_time()  # this loop answers one request after the other
    write_frame(answers, READY)
    specs = OrderedDict() if specs is None else specs
    try:
        while (frame := read_frame(requests)) is not None:
            digest, payload, op, args = pickle.loads(frame)  # noqa: S301 (the parent's)
            write_frame(answers, json.dumps(_answer(specs, digest, payload, op, args)).encode())
    except BrokenPipeError:  # the parent stopped listening (it is shutting down): end quietly
        with contextlib.suppress(OSError):
            answers.close()  # its unsent bytes must not fail again at interpreter exit


def prepare(specs: OrderedDict[str, _Jobs], digest: str, payload: bytes) -> dict[str, Any]:
    """Build what sign-ins use for this spec into ``specs``: the child's answer to "prepare"."""
    return _answer(specs, digest, payload, "prepare", [])


def _answer(
    specs: OrderedDict[str, _Jobs], digest: str, payload: bytes | None, op: str, args: list[Any]
) -> dict[str, Any]:
    jobs = specs.get(digest)
    if jobs is None:
        if payload is None:
            return {"need_spec": True}
        jobs = specs[digest] = _Jobs(payload)
        if len(specs) > SPECS_PER_CHILD:
            specs.popitem(last=False)
    specs.move_to_end(digest)
    if op not in OPERATIONS:
        return {"failed": f"unknown operation {op!r}"}
    try:
        answer = {"ok": getattr(jobs, op)(*args)}
        if jobs.settings.gc_freeze:  # after the first job's imports and set-up
            freeze_startup_heap()
        return answer
    except GateError as error:
        return {"error": error.code, "detail": error.detail}
    except Exception as exc:  # reported to the parent, which logs it
        where = traceback.extract_tb(exc.__traceback__)[-1]
        where_text = f"{Path(where.filename).name}:{where.lineno}"
        return {"failed": f"{type(exc).__name__} at {where_text}"}
