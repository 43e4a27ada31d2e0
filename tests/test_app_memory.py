"""What the app's process keeps for each sign-in, kept small without weakening anything
(issue 29's memory target): the texts every sign-in repeats are shared, not copied; a set of
one member costs the memory store no dict."""

from __future__ import annotations

import json
from typing import Any

import pytest

from saml_gate.runtime.worker_wire import login_from_wire
from saml_gate.store.memory import MemoryStore

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
    assert second.attributes == {"email": ("alice@example.com",), "groups": ("admins", "staff")}


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


# ------------------------------------------------------------------ the memory store's sets
async def test_a_set_of_one_member_answers_as_any_set() -> None:
    store = MemoryStore(clock=lambda: 1_900_000_000.0)
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
    store = MemoryStore(clock=lambda: 1_900_000_000.0, max_members=1)
    await store.add_member("subject:a", "one", 60)
    await store.add_member("subject:a", "two", 60)
    assert await store.members("subject:a") == {"two"}
