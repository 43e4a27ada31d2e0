"""saml_gate.contrib.django: the gate's identity as Django's request.user, Django admin via SSO.

The mapping (create / update a user, staff and superuser from groups, group sync, refusals) is
tested directly against a test database made by Django's test tooling; the admin is driven
through the example project's ASGI application (examples/django_asgi) behind the gate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
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
    assert (m.username, m.create_users, m.adopt_existing_users, m.sync_groups) == (
        "name_id",
        True,
        False,
        False,
    )
    assert mapping(staff_groups="ops").staff_groups == ("ops",)
    with pytest.raises(ConfigError, match="adopt_existing_users"):
        mapping(adopt_existing_users="yes")


# ---------------------------------------------------------------------- the mapping
def test_creates_then_updates_the_user(db: None) -> None:
    from saml_gate.contrib.django import identity_link, sync_user

    user = sync_user(identity(email="Carol@Example.com"), mapping())
    assert user.pk is not None and user.username == "00u1carol"  # the NameID, verbatim
    assert user.email == "Carol@Example.com" and not user.has_usable_password()
    assert user.password.startswith(identity_link(identity()) + ":")  # linked to the NameID
    assert not user.is_staff and not user.is_superuser  # flags are not managed by default
    again = sync_user(identity(email="carol@example.com"), mapping())
    assert again.pk == user.pk and again.email == "carol@example.com"


def test_usernames_are_never_case_folded(db: None) -> None:
    from saml_gate.contrib.django import sync_user

    by_email = mapping(username="email")
    user = sync_user(identity(email="Carol@Example.com"), by_email)
    assert user.username == "Carol@Example.com"
    upper = sync_user(identity(name_id="00U1CAROL", email="CAROL@EXAMPLE.COM"), by_email)
    assert upper.pk != user.pk and upper.username == "CAROL@EXAMPLE.COM"
    assert sync_user(identity(name_id="00U1CAROL"), mapping()).username == "00U1CAROL"


def test_an_account_is_only_ever_its_own_identitys(db: None) -> None:
    """Linked to one IdP and NameID: another NameID (or the same NameID from another IdP)
    arriving at its username is refused, even with adopt_existing_users."""
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import sync_user

    by_email = mapping(username="email", adopt_existing_users=True)
    carol = sync_user(identity(), by_email)
    for other in (identity(name_id="00u1mallory"), identity(issuer="https://other-idp.test")):
        with pytest.raises(PermissionDenied, match="belongs to another identity"):
            sync_user(other, by_email)
    assert sync_user(identity(), by_email).pk == carol.pk


def test_accounts_the_gate_did_not_create_are_adopted_only_when_configured(db: None) -> None:
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import identity_link, sync_user

    model = get_user_model()
    made = model.objects.create_user("00u1carol", "carol@example.com", "a password")
    unusable = model.objects.create_user("00u1dave")  # an unusable password: not the gate's
    for existing in (made, unusable):
        person = identity(name_id=existing.username)
        with pytest.raises(PermissionDenied, match="was not created by saml-gate"):
            sync_user(person, mapping())
        existing.refresh_from_db()
        assert not existing.password.startswith("!saml-gate:")
        adopted = sync_user(person, mapping(adopt_existing_users=True))
        assert adopted.pk == existing.pk
        assert adopted.password.startswith(identity_link(person) + ":")  # its own from now on
        assert sync_user(person, mapping()).pk == existing.pk
    assert not model.objects.get(pk=made.pk).check_password("a password")


def test_a_service_never_adopts_an_account(db: None) -> None:
    """A gate token's name is the operator's word: a token named "admin" gets no existing
    "admin" account, even with adopt_existing_users; it gets one of its own otherwise."""
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import sync_user

    get_user_model().objects.create_user("admin", "admin@example.com", "pw")
    service = identity(email=None, name_id="admin", issuer="saml-gate", kind="service")
    with pytest.raises(PermissionDenied, match="a service never adopts"):
        sync_user(service, mapping(adopt_existing_users=True))
    ci = sync_user(identity(email=None, name_id="ci-deploy", kind="service"), mapping())
    assert ci.username == "ci-deploy" and not ci.has_usable_password()


def test_an_operator_can_link_one_existing_account_to_one_identity(db: None) -> None:
    from django.contrib.auth import get_user_model
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import link_account, sync_user

    existing = get_user_model().objects.create_user("00u1carol", "carol@example.com", "pw")
    link_account(existing, issuer="https://idp.example.test", name_id="00u1carol")
    carol = identity(issuer="https://idp.example.test")
    assert sync_user(carol, mapping()).pk == existing.pk
    with pytest.raises(PermissionDenied, match="belongs to another identity"):
        sync_user(identity(issuer="https://other-idp.test"), mapping(adopt_existing_users=True))


def test_a_password_set_on_a_linked_account_unlinks_it(db: None) -> None:
    from django.core.exceptions import PermissionDenied

    from saml_gate.contrib.django import sync_user

    user = sync_user(identity(), mapping())
    user.set_password("set in the admin")
    user.save()
    with pytest.raises(PermissionDenied, match="was not created by saml-gate"):
        sync_user(identity(), mapping())


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
        (identity(email=None), {"username": "email"}, "no email"),
        (identity(), {"create_users": False}, "does not exist"),
        (identity(email="x" * 140 + "@example.com"), {"username": "email"}, "longer than 150"),
        (identity(name_id="x" * 151), {}, "longer than 150"),
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

    get_user_model().objects.filter(pk=sync_user(identity(), mapping()).pk).update(is_active=False)
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


# ---------------------------------------------------------------------- the reported attack
ADMIN = "admin@example.test"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture
def existing_superuser(django_db: None) -> Iterator[None]:
    """A superuser made with Django's own tooling (``createsuperuser``), before any sign-in;
    every account the test adds (and only those) is deleted afterwards."""
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser(ADMIN, ADMIN, ADMIN_PASSWORD)
    yield
    get_user_model().objects.filter(pk__gte=admin.pk).delete()


@pytest.fixture
def django_gate(
    gate_env: None, existing_superuser: None, idp_keys: Any, sp_keys: Any, clock: Any
) -> Callable[..., Any]:
    """The example project behind the gate, with ``SAML_GATE_USERS`` as given (the example's
    own by default): a factory of harnesses."""
    from django.conf import settings
    from django.test import override_settings

    from tests.test_django_example import _asgi_module

    def build(**users: Any) -> Harness:
        example = _asgi_module()
        with override_settings(SAML_GATE_USERS={**settings.SAML_GATE_USERS, **users}):
            gate = example.build_application(clock=clock)
        transport = httpx.ASGITransport(app=gate)
        client = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        return Harness(gate=gate, client=client, idp_keys=idp_keys, sp_keys=sp_keys, clock=clock)

    return build


async def signed_in_as(h: Harness, name_id: str, email: str) -> httpx.Response:
    """Sign in through the gate (a person in no admin group) and ask Django who that is."""
    h.client.cookies.clear()
    attributes = {"email": [email], "displayName": ["Mallory"], "groups": ["users"]}
    assert (await _login(h, name_id=name_id, attributes=attributes)).status_code == 303
    return await h.client.get("/api/me", headers={"accept": "application/json"})


async def admin_account() -> dict[str, Any]:
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    def read() -> dict[str, Any]:
        admin = get_user_model().objects.get(username=ADMIN)
        return {
            "password works": admin.check_password(ADMIN_PASSWORD),
            "email": admin.email,
            "is_superuser": admin.is_superuser,
            "accounts": sorted(  # the superuser, and every account made after it
                get_user_model().objects.filter(pk__gte=admin.pk).values_list("username", flat=True)
            ),
        }

    return await sync_to_async(read)()


UNTOUCHED = {"password works": True, "email": ADMIN, "is_superuser": True}


@pytest.mark.parametrize(
    ("name_id", "email"),
    [
        ("mallory@example.test", "ADMIN@Example.test"),  # the admin's email, in other case
        ("mallory@example.test", ADMIN),  # the admin's email exactly
        ("Admin@example.test", ADMIN),  # the admin's username, in other case, as NameID
    ],
)
@pytest.mark.parametrize("username", ["name_id", "email"])
async def test_no_identity_becomes_a_superuser_the_gate_did_not_create(
    django_gate: Callable[..., Harness], name_id: str, email: str, username: str
) -> None:
    h = django_gate(username=username)
    async with h.client:
        me = await signed_in_as(h, name_id, email)
        index = await h.client.get("/admin/", headers=HTML)
    account = await admin_account()
    assert {k: account[k] for k in UNTOUCHED} == UNTOUCHED
    if me.status_code == 403:  # its username is the admin's account: refused, never merged
        assert username == "email" and email == ADMIN
        assert account["accounts"] == [ADMIN]
    else:  # an account of its own, named verbatim
        assert me.status_code == 200, me.text
        own = name_id if username == "name_id" else email
        assert me.json()["django_user"] == {
            "username": own,
            "is_staff": False,
            "is_superuser": False,
            "groups": ["users"],
        }
        assert account["accounts"] == sorted([ADMIN, own])
    assert index.status_code != 200  # never Django's admin


async def test_the_admins_own_identity_gets_the_account_only_when_adoption_is_configured(
    django_gate: Callable[..., Harness],
) -> None:
    refused = django_gate()
    async with refused.client:
        assert (await signed_in_as(refused, ADMIN, ADMIN)).status_code == 403
    assert (await admin_account())["password works"]

    adopting = django_gate(adopt_existing_users=True)
    async with adopting.client:
        me = await signed_in_as(adopting, ADMIN, ADMIN)
    assert me.status_code == 200 and me.json()["django_user"]["username"] == ADMIN
    account = await admin_account()
    # adopted: the gate is its only way in now, and its flags follow the IdP's groups
    assert not account["password works"] and not account["is_superuser"]

    after = django_gate()  # adoption off again: the link stays, other identities stay out
    async with after.client:
        assert (await signed_in_as(after, ADMIN, ADMIN)).status_code == 200
        assert (await signed_in_as(after, "Admin@example.test", ADMIN)).status_code == 200
    assert (await admin_account())["accounts"] == ["Admin@example.test", ADMIN]
    by_email = django_gate(username="email", adopt_existing_users=True)
    async with by_email.client:
        assert (await signed_in_as(by_email, "mallory@example.test", ADMIN)).status_code == 403
