"""One engine for all SAML work: logout messages from the IdP are read where Responses are.

With verify_isolation="process" the LogoutRequests and LogoutResponses posted to the
unauthenticated ``/saml/slo`` are parsed and signature-checked in a child process (a C library
crashing on them ends a child, not the app), and the child's answers are JSON that the app
rebuilds only when every field has the expected type. With "thread" they are read in-process.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from saml_gate.runtime.engine import ProcessEngine, ThreadEngine
from saml_gate.runtime.worker_wire import (
    login_from_wire,
    logout_message_from_wire,
    logout_request_from_wire,
    logout_response_from_wire,
    request_url_from_wire,
)
from saml_gate.runtime.workers import WorkerFailed, WorkerPool, WorkSpec
from saml_gate.saml.logout import IdpLogoutRequest, IdpLogoutResponse
from saml_gate.user import SamlUser
from tests.test_logout import HTML, IDP_SLO_URL, SLO_URL, Slo, error_code, local, post_signed
from tests.test_logout import slo as slo  # the fixture: a harness with a pysaml2 IdP
from tests.test_workers import _ExitOnLoad

pytestmark = pytest.mark.anyio


def never_in_this_process(s: Slo, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the app's own logout verifier and SP fail: only a child can do the work."""

    def in_process(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("SAML work done in the app's process")

    saml = s.h.gate.core.saml
    for name in ("read_redirect", "read_post"):
        monkeypatch.setattr(saml.logout_verifier, name, in_process)
    for name in ("logout_request_url", "logout_response_url"):
        monkeypatch.setattr(saml.sp, name, in_process)


async def test_the_engine_is_chosen_once_from_verify_isolation(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    assert isinstance((await slo()).h.gate.core.engine, ProcessEngine)
    threads = (await slo(verify_isolation="thread")).h.gate.core
    assert isinstance(threads.engine, ThreadEngine) and threads.workers is None


async def test_idp_initiated_logout_is_read_in_a_child_process(
    slo: Callable[..., Awaitable[Slo]], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await slo()
    cookie = await s.login("okta-1")
    never_in_this_process(s, monkeypatch)
    url = s.idp.redirect(s.idp.logout_request(["okta-1"]), SLO_URL, response=False)
    r = await s.h.client.get(local(url), headers=HTML)
    assert r.status_code == 303, r.text
    assert r.headers["location"].startswith(IDP_SLO_URL + "?")  # the answer, built in a child
    assert await s.status(cookie) == 401
    pool = s.h.gate.core.workers
    assert pool is not None
    children = [c.process.pid for c in pool._idle]
    assert children and os.getpid() not in children


async def test_posted_logout_and_our_own_logout_request_are_done_in_a_child(
    slo: Callable[..., Awaitable[Slo]], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = await slo()
    await s.login("okta-1")
    never_in_this_process(s, monkeypatch)
    r = await s.sign_out()  # SP-initiated: the LogoutRequest is built in a child
    assert r.status_code == 303 and r.headers["location"].startswith(IDP_SLO_URL + "?")
    cookie = await s.login("okta-2")
    value = post_signed(str(s.idp.logout_request(["okta-2"])), s.idp.keys)
    r = await s.h.client.post("/saml/slo", data={"SAMLRequest": value}, headers=HTML)
    assert r.status_code == 303, r.text
    assert await s.status(cookie) == 401


async def test_with_thread_isolation_logout_is_read_in_this_process(
    slo: Callable[..., Awaitable[Slo]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_child(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a child process was used")

    monkeypatch.setattr(WorkerPool, "ask", no_child)
    s = await slo(verify_isolation="thread")
    cookie = await s.login("okta-1")
    verifier = s.h.gate.core.saml.logout_verifier
    read = verifier.read_redirect
    seen: list[tuple[int, str]] = []

    def recorded(*args: Any, **kwargs: Any) -> Any:
        seen.append((os.getpid(), threading.current_thread().name))
        return read(*args, **kwargs)

    monkeypatch.setattr(verifier, "read_redirect", recorded)
    url = s.idp.redirect(s.idp.logout_request(["okta-1"]), SLO_URL, response=False)
    r = await s.h.client.get(local(url), headers=HTML)
    assert r.status_code == 303, r.text
    assert await s.status(cookie) == 401
    assert len(seen) == 1 and seen[0][0] == os.getpid()
    assert seen[0][1] != threading.main_thread().name  # off the event loop's thread


async def test_a_child_that_dies_reading_a_logout_message_is_a_refusal_and_is_replaced(
    slo: Callable[..., Awaitable[Slo]], caplog: pytest.LogCaptureFixture
) -> None:
    s = await slo()
    cookie = await s.login("okta-1")
    saml = s.h.gate.core.saml
    good = saml.state
    url = s.idp.redirect(s.idp.logout_request(["okta-1"]), SLO_URL, response=False)
    crash = WorkSpec("crash-" + good.work_spec.digest, pickle.dumps(_ExitOnLoad()))
    saml.current = dataclasses.replace(good, work_spec=crash)
    r = await s.h.client.get(local(url), headers=HTML)
    assert r.status_code == 400 and error_code(r) == "slo_invalid", r.text
    failures = [x for x in caplog.records if getattr(x, "event", "") == "worker_failed"]
    assert failures and "exited" in failures[0].getMessage()
    assert await s.status(cookie) == 200  # nothing was ended
    saml.current = good
    r = await s.h.client.get(local(url), headers=HTML)
    assert r.status_code == 303, r.text
    assert await s.status(cookie) == 401


async def test_a_new_idp_is_used_by_the_children(slo: Callable[..., Awaitable[Slo]]) -> None:
    """A metadata refresh (use_idp) gives the children the new configuration."""
    core = (await slo()).h.gate.core
    user = SamlUser(name_id="alice@example.com", email=None, name=None, groups=())
    found = await core.engine.logout_request_url(user)
    assert found is not None and found[1].startswith(IDP_SLO_URL + "?")
    core.saml.use_idp(dataclasses.replace(core.saml.idp, slo_url=None))
    assert await core.engine.logout_request_url(user) is None


async def test_a_child_whose_answer_is_refused_is_not_reused(
    slo: Callable[..., Awaitable[Slo]],
) -> None:
    spec = (await slo()).h.gate.core.saml.work_spec
    pool = WorkerPool()
    try:
        with pytest.raises(WorkerFailed):  # an AuthnRequest URL is no logout message
            await pool.ask(spec, logout_message_from_wire, "authn_request", "relay", False)
        assert pool._idle == []
    finally:
        pool.close()


# ------------------------------------------------------------------------ answers, checked
LOGOUT_REQUEST = {
    "kind": "request",
    "id": "_r1",
    "issuer": "https://idp.example.test",
    "name_id": "alice@example.com",
    "session_indexes": ["s1"],
    "relay_state": None,
    "valid_until": 1700000000.0,
}
LOGOUT_RESPONSE = {
    "kind": "response",
    "in_response_to": "_q1",
    "status": "Success",
    "partial": False,
    "relay_state": "x",
}


def test_logout_messages_are_rebuilt_from_well_typed_answers() -> None:
    request = logout_message_from_wire(dict(LOGOUT_REQUEST))
    assert request == IdpLogoutRequest(
        "_r1", "https://idp.example.test", "alice@example.com", ("s1",), None, 1700000000.0
    )
    response = logout_message_from_wire(dict(LOGOUT_RESPONSE))
    assert response == IdpLogoutResponse("_q1", "Success", False, "x")


@pytest.mark.parametrize(
    "answer",
    [
        None,
        [],
        "request",
        {**LOGOUT_REQUEST, "kind": "other"},
        {**LOGOUT_REQUEST, "name_id": 7},
        {**LOGOUT_REQUEST, "session_indexes": "s1"},
        {**LOGOUT_REQUEST, "session_indexes": [1]},
        {**LOGOUT_REQUEST, "valid_until": "soon"},
        {**LOGOUT_REQUEST, "valid_until": True},
        {**LOGOUT_REQUEST, "extra": 1},
        {k: v for k, v in LOGOUT_REQUEST.items() if k != "issuer"},
        {**LOGOUT_RESPONSE, "partial": "no"},
        {**LOGOUT_RESPONSE, "status": None},
        {**LOGOUT_RESPONSE, "in_response_to": {"__class__": "x"}},
    ],
)
def test_logout_answers_of_the_wrong_shape_are_refused(answer: Any) -> None:
    with pytest.raises(WorkerFailed):
        logout_message_from_wire(answer)


LOGIN = {
    "name_id": "alice@example.com",
    "name_id_format": None,
    "session_index": "s1",
    "attributes": {"groups": ["admins"]},
    "authn_instant": "2026-12-01T10:00:00+00:00",
    "authn_context": None,
    "session_not_on_or_after": None,
    "issuer": "https://idp.example.test",
    "in_response_to": "_q1",
    "assertion_id": "_a1",
    "replay_until": 1700000000.0,
}


def test_a_login_is_rebuilt_from_a_well_typed_answer() -> None:
    login = login_from_wire(dict(LOGIN))
    assert login.attributes == {"groups": ("admins",)}
    assert (
        login.authn_instant.year == 2026
        and login.replay_key == "assertion:https://idp.example.test:_a1"
    )


@pytest.mark.parametrize(
    ("read", "answer"),
    [
        (request_url_from_wire, ["id"]),
        (request_url_from_wire, ["id", 3]),
        (request_url_from_wire, {"id": "x"}),
        (logout_request_from_wire, "https://idp"),
        (logout_response_from_wire, ["https://idp"]),
        (login_from_wire, {"name_id": "alice"}),
        (login_from_wire, {**LOGIN, "attributes": {"groups": "admins"}}),
        (login_from_wire, {**LOGIN, "attributes": ["groups"]}),
        (login_from_wire, {**LOGIN, "authn_instant": "yesterday"}),
        (login_from_wire, {**LOGIN, "replay_until": None}),
        (login_from_wire, []),
    ],
)
def test_other_answers_of_the_wrong_shape_are_refused(
    read: Callable[[Any], Any], answer: Any
) -> None:
    with pytest.raises(WorkerFailed):
        read(answer)
