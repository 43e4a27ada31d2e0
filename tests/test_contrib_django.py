"""saml_gate.contrib.django: the gate's identity as Django's request.user, Django admin via SSO.

The mapping (create / update a user, staff and superuser from groups, group sync, refusals) is
tested directly against a test database made by Django's test tooling; the admin is driven
through the example project's ASGI application (examples/django_asgi) behind the gate.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from saml_gate.errors import ConfigError
from saml_gate.user import SamlUser
from tests.support import BASE_URL, Harness, decode_redirect_request
from tests.test_django_example import (  # the example's fixtures: env, database, harness
    _login,
    django_db,
    gate_env,
    harness,
)

pytestmark = pytest.mark.anyio

__all__ = ["django_db", "gate_env", "harness"]

HTML = {"accept": "text/html"}
BOB = {
    "name_id": "bob@example.com",
    "attributes": {"email": ["bob@example.com"], "displayName": ["Bob"], "groups": ["users"]},
}


def identity(email: str | None = "carol@example.com", **overrides: Any) -> SamlUser:
    values: dict[str, Any] = dict(name_id="00u1carol", email=email, name="Carol", groups=("users",))
    values.update(overrides)
    return SamlUser(**values)


@pytest.fixture
def db(django_db: None) -> Iterator[None]:
    """Each direct mapping test runs in a transaction that is rolled back."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def mapping(**options: Any) -> Any:
    from django.test import override_settings

    from saml_gate.contrib.django import UserMapping

    with override_settings(SAML_GATE_USERS=options):
        return UserMapping.from_settings()


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "options",
    [
        {"username": "upn"},
        {"colour": "blue"},
        {"sync_groups": "yes"},
        {"staff_groups": [""]},
        {"superuser_groups": [3]},
    ],
)
def test_bad_mapping_settings_name_the_setting(django_db: None, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        mapping(**options)
    assert info.value.setting == "SAML_GATE_USERS"


def test_mapping_defaults(django_db: None) -> None:
    m = mapping()
    assert (m.username, m.create_users, m.sync_groups) == ("email", True, False)
    assert mapping(staff_groups="ops").staff_groups == ("ops",)


# ---------------------------------------------------------------------- the mapping
def test_creates_then_updates_the_user(db: None) -> None:
    from saml_gate.contrib.django import sync_user

    user = sync_user(identity(email="Carol@Example.com"), mapping())
    assert user.pk is not None and user.username == "carol@example.com"
    assert user.email == "Carol@Example.com" and not user.has_usable_password()
    assert not user.is_staff and not user.is_superuser  # flags are not managed by default
    again = sync_user(identity(email="carol@example.com"), mapping())
    assert again.pk == user.pk and again.email == "carol@example.com"


def test_staff_and_superuser_follow_the_groups(db: None) -> None:
    from saml_gate.contrib.django import sync_user

    m = mapping(staff_groups=["ops"], superuser_groups=["admins"])
    user = sync_user(identity(groups=("admins",)), m)
    assert user.is_staff and user.is_superuser
    user = sync_user(identity(groups=("ops",)), m)
    assert user.is_staff and not user.is_superuser
    user = sync_user(identity(groups=("users",)), m)  # removed from the groups at the IdP
    assert not user.is_staff and not user.is_superuser


def test_group_sync_mirrors_the_idp(db: None) -> None:
    from django.contrib.auth.models import Group

    from saml_gate.contrib.django import sync_user

    m = mapping(sync_groups=True)
    user = sync_user(identity(groups=("users", "finance")), m)
    assert sorted(user.groups.values_list("name", flat=True)) == ["finance", "users"]
    user = sync_user(identity(groups=("finance", "legal")), m)
    assert sorted(user.groups.values_list("name", flat=True)) == ["finance", "legal"]
    assert Group.objects.filter(name="users").exists()  # groups are never deleted
    unsynced = sync_user(identity(groups=("other",)), mapping())
    assert sorted(unsynced.groups.values_list("name", flat=True)) == ["finance", "legal"]


def test_username_from_the_name_id(db: None) -> None:
    from saml_gate.contrib.django import sync_user

    user = sync_user(identity(email=None), mapping(username="name_id"))
    assert user.username == "00u1carol" and user.email == ""


@pytest.mark.parametrize(
    ("person", "options", "reason"),
    [
        (identity(email=None), {}, "no email"),
        (identity(), {"create_users": False}, "no account"),
        (identity(email="x" * 140 + "@example.com"), {}, "longer than 150"),
    ],
)
def test_refusals(db: None, person: SamlUser, options: dict[str, Any], reason: str) -> None:
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import sync_user

    with pytest.raises(PermissionDenied, match=reason):
        sync_user(person, mapping(**options))


def test_a_user_disabled_in_django_is_refused(db: None) -> None:
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import sync_user

    get_user_model().objects.create(username="carol@example.com", is_active=False)
    with pytest.raises(PermissionDenied, match="disabled"):
        sync_user(identity(), mapping())


def test_the_not_staff_page_says_where_staff_status_comes_from(db: None) -> None:
    from saml_gate.contrib.django import _not_staff_page, sync_user

    person = identity(groups=("Admins", "<i>x</i>"))
    unmapped = _not_staff_page(person, sync_user(person, mapping()), mapping())
    assert "maps no group to staff status" in unmapped and "Staff status" in unmapped
    assert "<i>x</i>" not in unmapped and "&lt;i&gt;x&lt;/i&gt;" in unmapped
    mapped = mapping(staff_groups=["admins"])
    page = _not_staff_page(person, sync_user(person, mapped), mapped)
    assert "members of <code>admins</code> are staff" in page and "<code>Admins</code>" in page


# ---------------------------------------------------------------------- through the example
async def test_admin_is_reachable_through_single_sign_on(harness: Harness) -> None:
    assert (await _login(harness)).status_code == 303
    index = await harness.client.get("/admin/", headers=HTML)
    assert index.status_code == 200, index.text
    assert "Site administration" in index.text
    users = await harness.client.get("/admin/auth/user/", headers=HTML)
    assert users.status_code == 200 and "alice@example.com" in users.text
    css = await harness.client.get("/static/admin/css/base.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")

    form = await harness.client.get("/admin/auth/group/add/", headers=HTML)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    assert token is not None
    created = await harness.client.post(
        "/admin/auth/group/add/",
        data={"csrfmiddlewaretoken": token.group(1), "name": "auditors"},
        headers=HTML,
    )
    assert created.status_code == 302, created.text
    groups = await harness.client.get("/admin/auth/group/", headers=HTML)
    assert "auditors" in groups.text


async def test_admin_is_refused_to_people_outside_the_admin_groups(harness: Harness) -> None:
    assert (await _login(harness, **BOB)).status_code == 303
    page = await harness.client.get("/", headers=HTML)
    assert page.status_code == 200 and "bob@example.com" in page.text
    index = await harness.client.get("/admin/", headers=HTML)
    assert index.status_code == 302 and index.headers["location"].startswith("/admin/login/")
    login = await harness.client.get(index.headers["location"], headers=HTML)
    # Never Django's password form (it cannot work under SSO): a page naming what is missing.
    assert login.status_code == 403 and 'type="password"' not in login.text
    assert "needs staff status" in login.text and "bob@example.com" in login.text
    assert "<code>superuser_groups</code>" in login.text and "<code>admins</code>" in login.text
    assert "Your groups, as the IdP sent them: <code>users</code>" in login.text
    assert "href='/saml/logout'" in login.text


async def test_staff_opening_the_admin_login_go_on_to_the_admin(harness: Harness) -> None:
    assert (await _login(harness)).status_code == 303
    r = await harness.client.get("/admin/login/?next=/admin/auth/user/", headers=HTML)
    assert r.status_code == 302 and r.headers["location"] == "/admin/auth/user/"
    r = await harness.client.get("/admin/login/?next=https://evil.example/", headers=HTML)
    assert r.status_code == 302 and r.headers["location"] == "/admin/"


async def test_admin_needs_a_recent_sign_in(harness: Harness) -> None:
    await _login(harness)
    harness.clock.advance(timedelta(minutes=20).total_seconds())
    assert (await harness.client.get("/", headers=HTML)).status_code == 200
    r = await harness.client.get("/admin/", headers=HTML)
    assert r.status_code == 303
    request, _ = decode_redirect_request(r.headers["location"])
    assert request.get("ForceAuthn") == "true"


async def test_admin_log_out_goes_to_the_gate(harness: Harness) -> None:
    await _login(harness)
    index = await harness.client.get("/admin/", headers=HTML)
    form = re.search(
        r'<form id="logout-form" method="post" action="([^"]+)">(.*?)</form>', index.text, re.S
    )
    assert form is not None and form.group(1) == "/admin/logout/"
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.group(2))
    assert token is not None
    data = {"csrfmiddlewaretoken": token.group(1)}
    r = await harness.client.post("/admin/logout/", data=data, headers=HTML)
    # A 307: the browser posts the same form to the gate, from this site, and is signed out.
    assert r.status_code == 307 and r.headers["location"] == "/saml/logout"
    origin = {**HTML, "origin": BASE_URL, "sec-fetch-site": "same-origin"}
    out = await harness.client.post("/saml/logout", data=data, headers=origin)
    assert out.status_code == 200 and "You are signed out" in out.text
    assert (await harness.client.get("/admin/", headers=HTML)).status_code == 303  # to the IdP
