"""What the app's process keeps for each sign-in, kept small without weakening anything
(issue 29's memory target): the texts and group lists every sign-in repeats are shared, not
copied; the decoded-session cache keeps a digest of each cookie, not the cookie, and stays
bounded; a set of one member costs the memory store no dict."""

from __future__ import annotations

import json
from typing import Any

import pytest

from saml_gate.config.settings import GateSettings
from saml_gate.runtime.worker_wire import login_from_wire
from saml_gate.saml.response import VerifiedLogin
from saml_gate.session.sessions import _CACHE_SIZE, _GROUP_LISTS, SessionCodec
from saml_gate.store.memory import MemoryStore
from tests.support import SECRET

pytestmark = pytest.mark.anyio

LOGIN: dict[str, Any] = {
    "name_id": "alice@example.com",
    "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    "session_index": "s1",
    "attributes": {"email": ["alice@example.com"], "groups": ["admins", "staff"]},
    "authn_instant": "2026-12-01T10:00:00+00:00",
    "authn_context": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
    "session_not_on_or_after": None,
    "issuer": "https://idp.example.test",
    "in_response_to": None,
    "assertion_id": "_a1",
    "replay_until": 1700000000.0,
}


def _answer(**changes: Any) -> Any:
    """A child's answer as the app reads it: fresh strings from JSON, as over the pipe."""
    return json.loads(json.dumps({**LOGIN, **changes}))


def test_two_logins_share_the_texts_every_sign_in_repeats() -> None:
    first = login_from_wire(_answer())
    second = login_from_wire(_answer(name_id="bob@example.com", assertion_id="_a2"))
    assert first.issuer is second.issuer
    assert first.name_id_format is second.name_id_format
    assert first.authn_context is second.authn_context
    names = [next(k for k in login.attributes if k == "groups") for login in (first, second)]
    assert names[0] is names[1]
    # what differs stays as it was said, and equal to what was sent
    assert (first.name_id, second.name_id) == ("alice@example.com", "bob@example.com")
    assert second.attributes == {
        "email": ("alice@example.com",),
        "groups": ("admins", "staff"),
    }


def test_absent_optional_texts_stay_absent() -> None:
    login = login_from_wire(_answer(name_id_format=None, authn_context=None))
    assert login.name_id_format is None and login.authn_context is None


def test_an_attribute_equal_to_the_name_id_is_the_name_id() -> None:
    login = login_from_wire(_answer())
    (email,) = login.attributes["email"]
    assert email is login.name_id
    other = login_from_wire(
        _answer(attributes={"email": ["carol@example.com", "alice@example.com"]})
    )
    assert other.attributes["email"] == ("carol@example.com", "alice@example.com")
    assert other.attributes["email"][1] is other.name_id


# ------------------------------------------------------------------ the decoded-session cache
NOW = 1_900_000_000.0
IDP = "https://idp.example.test/metadata"


def _codec(store: MemoryStore | None = None) -> SessionCodec:
    settings = GateSettings.load(
        dev_idp=True,
        base_url="http://127.0.0.1:8000",
        secret_key=SECRET,
        clock=lambda: NOW,
    )
    return SessionCodec(settings, store or MemoryStore(), issuer=lambda: IDP)


def _login(person: str, groups: list[str]) -> VerifiedLogin:
    return login_from_wire(
        _answer(
            name_id=f"{person}@example.com",
            issuer=IDP,
            attributes={"email": [f"{person}@example.com"], "groups": groups},
        )
    )


def test_sessions_with_the_same_groups_share_one_tuple() -> None:
    codec = _codec()
    ann = codec.new_session(_login("ann", ["staff", "admins"]), NOW).user
    bob = codec.new_session(_login("bob", ["staff", "admins"]), NOW).user
    assert ann.groups == ("staff", "admins") and ann.groups is bob.groups
    assert ann.attributes["groups"] is ann.groups  # not a copy of its own either
    # a group named twice by the IdP: the attribute keeps what was said, the groups each once
    twice = codec.new_session(_login("cy", ["staff", "staff", "admins"]), NOW).user
    assert twice.groups is ann.groups
    assert twice.attributes["groups"] == ("staff", "staff", "admins")


def test_a_decoded_cookie_shares_what_sessions_repeat() -> None:
    codec = _codec()
    values = [codec.encode(codec.new_session(_login(p, ["staff"]), NOW)) for p in ("ann", "bob")]
    fresh = _codec()  # another process: decodes the cookies from their text
    ann, bob = (fresh.decode(v) for v in values)
    assert ann is not None and bob is not None
    assert ann.user.issuer is bob.user.issuer
    assert ann.user.name_id_format is bob.user.name_id_format
    assert ann.user.groups is bob.user.groups and ann.user.groups == ("staff",)
    assert ann.user.email is ann.user.name_id
    same = codec.decode(values[0])
    assert same is not None and ann.user.as_dict() == same.user.as_dict()


def test_the_cache_takes_only_the_exact_cookie_and_stays_bounded() -> None:
    codec = _codec()
    issued = codec.issue(codec.new_session(_login("ann", ["staff"]), NOW), NOW)
    value = issued.cookie.split(b";")[0].split(b"=", 1)[1].decode()
    assert codec.cached(value) is issued.session
    assert codec.cached(value + "x") is None and codec.decode(value + "x") is None
    assert codec.cached(value[:-2] + "AA") is None
    for person in range(_CACHE_SIZE + 10):
        codec.issue(codec.new_session(_login(f"p{person}", ["staff"]), NOW), NOW)
    assert len(codec._cache) == _CACHE_SIZE
    assert codec.cached(value) is None  # the oldest went first
    again = codec.decode(value)  # still one of ours: read again, and kept again
    assert again is not None and again.user.session_id == issued.session.user.session_id
    assert codec.cached(value) is again


def test_group_lists_kept_are_bounded() -> None:
    codec = _codec()
    for n in range(_GROUP_LISTS + 5):
        codec.new_session(_login("ann", [f"team{n}"]), NOW)
    assert 0 < len(codec._group_lists) <= _GROUP_LISTS


# ------------------------------------------------------------------ the memory store's sets
async def test_a_set_of_one_member_answers_as_any_set() -> None:
    store = MemoryStore(clock=lambda: NOW)
    await store.add_member("subject:a", "one", 60)
    assert await store.members("subject:a") == {"one"}
    await store.add_member("subject:a", "one", 60)  # the same member again
    assert await store.members("subject:a") == {"one"}
    await store.remove_members("subject:a", iter(["one"]))  # any iterable, once through
    assert await store.members("subject:a") == frozenset()
    await store.add_member("subject:a", "two", 60)
    await store.add_member("subject:a", "three", 60)
    assert await store.members("subject:a") == {"two", "three"}
    await store.put("subject:a", "a value", 60)  # a value replaces the set, and back
    assert await store.members("subject:a") == frozenset()
    assert await store.get("subject:a") == "a value"
    await store.add_member("subject:a", "four", 60)
    assert await store.get("subject:a") is None
    assert await store.members("subject:a") == {"four"}


async def test_one_member_sets_keep_the_oldest_first_rule() -> None:
    store = MemoryStore(clock=lambda: NOW, max_members=1)
    await store.add_member("subject:a", "one", 60)
    await store.add_member("subject:a", "two", 60)
    assert await store.members("subject:a") == {"two"}
