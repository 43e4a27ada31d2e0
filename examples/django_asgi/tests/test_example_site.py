"""The Django example tested through its ASGI application, the gate in front of Django, with
the ``saml_idp`` fixture of saml-gate's pytest plugin (no conftest needed).

Django's own test ``Client`` and ``AsyncClient`` call Django directly, past the ASGI middleware,
so the gate would never see them: the requests go through ``httpx.AsyncClient`` over
``httpx.ASGITransport(app=...)`` instead, and ``saml_idp.sign_in_async`` signs people in.

Run: ``python -m pytest examples/django_asgi/tests``
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from saml_gate.testing import SamlTestIdp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_asgi.demo_site.settings")

pytestmark = pytest.mark.anyio

BASE_URL = "http://testserver"
JSON = {"accept": "application/json"}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The example's tables in a throw-away SQLite file, made by Django's test tooling."""
    directory = tmp_path_factory.mktemp("django")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_DB_PATH", str(directory / "example.sqlite3"))
        import django

        django.setup()
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = str(directory / "test.sqlite3")
    created = setup_databases(verbosity=0, interactive=False)
    yield
    teardown_databases(created, verbosity=0)


@pytest.fixture
async def client(database: None, saml_idp: SamlTestIdp) -> AsyncIterator[httpx.AsyncClient]:
    from examples.django_asgi.demo_site.asgi import build_application

    app = build_application(**saml_idp.gate_options(BASE_URL))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        yield client


async def me(client: httpx.AsyncClient) -> Any:
    answer = await client.get("/api/me", headers=JSON)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_api_wants_a_sign_in(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/me", headers=JSON)
    assert answer.status_code == 401 and answer.json()["error"] == "not_authenticated"


async def test_an_admin_becomes_a_django_superuser(
    saml_idp: SamlTestIdp, client: httpx.AsyncClient
) -> None:
    await saml_idp.sign_in_async(
        client,
        email="ann@example.com",
        groups=["admins", "users"],
        attributes={"displayName": ["Ann Admin"]},
    )
    page = await client.get("/")
    assert page.status_code == 200 and "Hello, Ann Admin" in page.text
    assert page.headers["x-frame-options"] == "DENY"  # Django answered
    body = await me(client)
    assert body["served_by"] == "django" and body["email"] == "ann@example.com"
    assert body["django_user"] == {
        "username": "ann@example.com",
        "is_staff": True,
        "is_superuser": True,
        "groups": ["admins", "users"],
    }


async def test_a_user_is_no_superuser(saml_idp: SamlTestIdp, client: httpx.AsyncClient) -> None:
    await saml_idp.sign_in_async(client, email="bob@example.com", groups=["users"])
    account = (await me(client))["django_user"]
    assert account["is_superuser"] is False and account["groups"] == ["users"]


async def test_the_admin_asks_for_a_recent_sign_in(
    saml_idp: SamlTestIdp, client: httpx.AsyncClient
) -> None:
    await saml_idp.sign_in_async(client, email="ann@example.com", groups=["admins"])
    saml_idp.clock.advance(1000)  # settings.SAML_GATE: /admin/ wants one at most 900 s old
    assert (await client.get("/api/me", headers=JSON)).status_code == 200
    step_up = await client.get("/admin/")
    assert step_up.status_code == 303
    assert step_up.headers["location"].startswith(saml_idp.sso_url)
    await saml_idp.sign_in_async(client, email="ann@example.com", groups=["admins"], path="/admin/")
    assert (await client.get("/admin/")).status_code == 200


async def test_single_logout_from_the_idp_ends_the_session(
    saml_idp: SamlTestIdp, client: httpx.AsyncClient
) -> None:
    await saml_idp.sign_in_async(client, email="bob@example.com", groups=["users"])
    answer = await saml_idp.logout_async(client, email="bob@example.com")
    assert answer.status_code == 303 and answer.headers["location"].startswith(saml_idp.slo_url)
    assert (await client.get("/api/me", headers=JSON)).status_code == 401


async def test_the_admin_log_out_link_signs_out_everywhere(
    saml_idp: SamlTestIdp, client: httpx.AsyncClient
) -> None:
    await saml_idp.sign_in_async(client, email="ann@example.com", groups=["admins"])
    assert (await client.get("/admin/logout/")).headers["location"] == "/saml/logout"
    signed_out = await saml_idp.sign_out_async(client)
    assert "You are signed out" in signed_out.text
    assert (await client.get("/api/me", headers=JSON)).status_code == 401
