"""Django integration: the person SamlGate signed in becomes Django's ``request.user``.

In ``settings.MIDDLEWARE``, put ``"saml_gate.contrib.django.SamlGateUserMiddleware"`` where
``"django.contrib.auth.middleware.AuthenticationMiddleware"`` was (it is a subclass, so Django's
admin accepts it). Each request served through the gate then gets a Django user, created or
updated from the gate's identity the first time ``request.user`` (or ``await request.auser()``)
is used in that request; requests on the gate's public paths get ``AnonymousUser``. Django's
own password sessions are not consulted: the gate is the only way in.

Configure with ``SAML_GATE_USERS`` in the Django settings (all optional)::

    SAML_GATE_USERS = {
        "username": "name_id",          # or "email": the new account's username, verbatim
        "create_users": True,           # False: only people with an account already
        "adopt_existing_users": False,  # True: an account the gate did not create may be taken
        "sync_groups": False,           # True: Django groups mirror the IdP's (created as needed)
        "staff_groups": ["admins"],     # is_staff exactly for members (left alone when unset)
        "superuser_groups": ["admins"], # is_superuser exactly for members (idem; implies staff)
    }

Each account the gate uses is linked to one identity: the IdP (issuer) and the NameID, read verbatim
(never trimmed or case-folded), in the account's password field, which Django then treats as
unusable (``!saml-gate:<SHA-256 of issuer and NameID>:<random>``; no migration needed). A person's
account is the one named by their NameID (``username: "email"``: their email attribute), verbatim;
it is created and linked on first use, and given to them only while linked to them. An account
linked to another identity is never given to this one; an account the gate did not create (no link:
made with ``createsuperuser``, the admin, a fixture) only when ``adopt_existing_users`` is True,
which then links it, replacing its password (the gate is its only way in); :func:`link_account`
links one account to one identity instead. So neither a NameID differing in case nor an email
attribute equal to an administrator's can take the administrator's account; a service (a bearer
token, ``request.user.kind == "service"``) gets an account of its own, never adopts one. A password
set on a linked account (the admin's "change password") unlinks it: it is then refused until linked
again. A user made inactive in Django is refused (403), whatever the IdP says. Django's admin login
form (a password form, which can never work under single sign-on) is never shown to a signed-in
person: staff are sent on to the admin, everyone else gets a page naming what is missing (staff
status, and which groups map to it).
"""

from __future__ import annotations

import hashlib
import html
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, Final, Literal

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.auth.models import AnonymousUser, Group
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.urls import reverse
from django.utils.crypto import get_random_string
from django.utils.functional import SimpleLazyObject
from django.utils.http import url_has_allowed_host_and_scheme

from saml_gate.errors import ConfigError
from saml_gate.user import SamlUser
from saml_gate.web.pages import page_document

log = logging.getLogger("saml_gate.django")

SETTING: Final = "SAML_GATE_USERS"
#: How a linked account's password field starts (``!``: Django's unusable-password prefix).
LINK_PREFIX: Final = "!saml-gate:"
#: The gate's sign-out (its default prefix).
GATE_SIGN_OUT: Final = "/saml/logout"


@dataclass(frozen=True)
class UserMapping:
    """How a gate identity maps onto a Django user (``settings.SAML_GATE_USERS``)."""

    username: Literal["name_id", "email"] = "name_id"
    create_users: bool = True
    adopt_existing_users: bool = False
    sync_groups: bool = False
    staff_groups: tuple[str, ...] = ()
    superuser_groups: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls) -> UserMapping:
        options: Any = getattr(settings, SETTING, {})
        if not isinstance(options, dict):
            raise ConfigError(SETTING, "must be a dict")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ConfigError(SETTING, f"unknown key {unknown[0]!r}; known: {', '.join(known)}")
        values = dict(options)
        if values.get("username", "name_id") not in ("name_id", "email"):
            raise ConfigError(SETTING, "'username' must be 'name_id' or 'email'")
        for key in ("create_users", "adopt_existing_users", "sync_groups"):
            if not isinstance(values.get(key, False), bool):
                raise ConfigError(SETTING, f"{key!r} must be True or False")
        for key in ("staff_groups", "superuser_groups"):
            groups = values.get(key, ())
            groups = (groups,) if isinstance(groups, str) else tuple(groups)
            if not all(isinstance(g, str) and g for g in groups):
                raise ConfigError(SETTING, f"{key!r} must be a list of group names")
            values[key] = groups
        return cls(**values)

    def username_for(self, identity: SamlUser) -> str:
        """The username of ``identity``'s account: the NameID or the email, verbatim."""
        if self.username == "email":
            if not identity.email:
                raise PermissionDenied("the IdP sent no email address for this person")
            return identity.email
        return identity.name_id


def identity_link(identity: SamlUser) -> str:
    """What a linked account's password field starts with: the identity's IdP and NameID."""
    return _link_of(identity.issuer, identity.name_id)


def _link_of(issuer: str, name_id: str) -> str:
    return LINK_PREFIX + hashlib.sha256(f"{issuer}\n{name_id}".encode()).hexdigest()


def _link(user: Any, identity: SamlUser) -> None:
    user.password = f"{identity_link(identity)}:{get_random_string(20)}"


def link_account(user: Any, *, issuer: str, name_id: str) -> None:
    """Give the existing account ``user`` to one identity (the IdP's entity ID and the NameID,
    verbatim), replacing its password, without turning ``adopt_existing_users`` on: for
    handing accounts made before the gate to their owners one by one (``manage.py shell``)."""
    user.password = f"{_link_of(issuer, name_id)}:{get_random_string(20)}"
    user.save(update_fields=["password"])


def _refuse(identity: SamlUser, username: str, why: str) -> PermissionDenied:
    log.warning(
        "saml-gate: %s signed in, but the Django account %s %s",
        identity.name_id,
        username,
        why,
        extra={"event": "django_account_refused", "name_id": identity.name_id},
    )
    return PermissionDenied(f"the account {username} {why}")


def _account_for(identity: SamlUser, username: str, mapping: UserMapping) -> tuple[Any, bool]:
    """(the account linked to ``identity``, whether it must be saved as new), or
    PermissionDenied. Call in a transaction."""
    model = get_user_model()
    user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None:
        if not mapping.create_users:
            raise _refuse(identity, username, "does not exist (create_users is off)")
        user = model(**{model.USERNAME_FIELD: username})
        _link(user, identity)
        return user, True
    link = str(user.password or "")
    if link.startswith(identity_link(identity) + ":"):
        return user, False
    if link.startswith(LINK_PREFIX):
        raise _refuse(identity, username, "belongs to another identity of the IdP")
    if not mapping.adopt_existing_users:
        raise _refuse(
            identity,
            username,
            "was not created by saml-gate, and adopt_existing_users is off",
        )
    if identity.is_service:  # a token's name is an operator's choice, not the IdP's word
        raise _refuse(identity, username, "was not created by saml-gate: a service never adopts")
    _link(user, identity)
    user.save(update_fields=["password"])
    log.warning(
        "saml-gate: the existing Django account %s is now %s's (adopt_existing_users)",
        username,
        identity.name_id,
        extra={"event": "django_account_adopted", "name_id": identity.name_id},
    )
    return user, False


def sync_user(identity: SamlUser, mapping: UserMapping) -> Any:
    """The Django user for ``identity``, created or updated to match it (blocking: DB)."""
    model = get_user_model()
    username = mapping.username_for(identity)
    limit = model._meta.get_field(model.USERNAME_FIELD).max_length
    if limit is not None and len(username) > limit:
        # Truncating could map two people onto one account.
        raise PermissionDenied(f"the username is longer than {limit} characters")
    with transaction.atomic():
        user, created = _account_for(identity, username, mapping)
        if not user.is_active:
            raise PermissionDenied(f"the account {username} is disabled")
        wanted: dict[str, Any] = {}
        email_field = model.get_email_field_name()
        if identity.email and hasattr(user, email_field):
            wanted[email_field] = identity.email
        if mapping.staff_groups or mapping.superuser_groups:
            superuser = identity.in_group(*mapping.superuser_groups)
            wanted["is_superuser"] = superuser
            wanted["is_staff"] = superuser or identity.in_group(*mapping.staff_groups)
        changed = [name for name, value in wanted.items() if getattr(user, name) != value]
        for name in changed:
            setattr(user, name, wanted[name])
        if created:
            try:
                with transaction.atomic():
                    user.save()
            except IntegrityError as exc:  # a unique username that compares case-insensitively
                raise _refuse(identity, username, f"cannot be created ({exc})") from exc
            log.info("saml-gate: created the Django user %s", username)
        elif changed:
            user.save(update_fields=changed)
        if mapping.sync_groups:
            _sync_groups(user, identity.groups)
    return user


def _sync_groups(user: Any, names: tuple[str, ...]) -> None:
    limit = Group._meta.get_field("name").max_length
    wanted = {n for n in names if len(n) <= limit}
    current = set(user.groups.values_list("name", flat=True))
    if wanted == current:
        return
    groups = [Group.objects.get_or_create(name=name)[0] for name in sorted(wanted)]
    user.groups.set(groups)


class SamlGateUserMiddleware(AuthenticationMiddleware):  # type: ignore[misc]
    """Replaces Django's AuthenticationMiddleware: ``request.user`` from the gate's identity."""

    def __init__(self, get_response: Callable[..., Any]) -> None:
        super().__init__(get_response)
        self.mapping = UserMapping.from_settings()

    def process_request(self, request: HttpRequest) -> None:
        scope: dict[str, Any] = getattr(request, "scope", {})
        identity = scope.get("user")
        if not isinstance(identity, SamlUser):
            anonymous = AnonymousUser()
            request.user = anonymous

            async def anonymous_user() -> AnonymousUser:
                return anonymous

            request.auser = anonymous_user
            return
        mapping = self.mapping
        resolved: list[Any] = []

        def resolve() -> Any:
            if not resolved:
                resolved.append(sync_user(identity, mapping))
            return resolved[0]

        async def auser() -> Any:
            return await sync_to_async(resolve)()

        request.user = SimpleLazyObject(resolve)
        request.auser = auser

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponse | None:
        """Instead of the admin's password form: the admin for staff, else a page saying why.
        Instead of the admin's "Log out" (which would sign out of Django alone, undone by the
        next request): the gate's sign-out, in one click."""
        match = request.resolver_match
        if match is not None and match.url_name == "logout" and "admin" in match.namespaces:
            return sign_out_at_the_gate(request)
        if match is None or match.url_name != "login" or "admin" not in match.namespaces:
            return None
        identity = getattr(request, "scope", {}).get("user")
        if not isinstance(identity, SamlUser):
            return None
        user = request.user
        if user.is_active and user.is_staff:
            wanted = request.GET.get("next", "")
            safe = url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()})
            return HttpResponseRedirect(wanted if wanted and safe else reverse("admin:index"))
        return HttpResponseForbidden(_not_staff_page(identity, user, self.mapping))


def sign_out_at_the_gate(request: HttpRequest) -> HttpResponse:
    """Django's "Log out" as the gate's sign-out: a 307 keeps the admin's POST (checked by
    Django's CSRF middleware), which the gate accepts in one click as coming from this site
    (see :mod:`saml_gate.web.sign_out`); a GET shows the gate's confirmation form. Usable as a
    view: ``path("logout/", sign_out_at_the_gate)``."""
    response = HttpResponse(status=307)
    response["Location"] = request.META.get("SCRIPT_NAME", "").rstrip("/") + GATE_SIGN_OUT
    return response


def _not_staff_page(identity: SamlUser, user: Any, mapping: UserMapping) -> str:
    """Why a signed-in person may not use Django's admin, and what would change that (HTML)."""
    e = html.escape
    groups = ", ".join(f"<code>{e(g)}</code>" for g in identity.groups) or "none"
    mapped = [*mapping.staff_groups, *mapping.superuser_groups]
    if mapped:
        fix = (
            "Staff status comes from the IdP's groups (<code>SAML_GATE_USERS</code>"
            " <code>staff_groups</code> / <code>superuser_groups</code>): members of "
            + " or ".join(f"<code>{e(g)}</code>" for g in dict.fromkeys(mapped))
            + " are staff. Ask an administrator to add you to one of them at the IdP (names are"
            " case-sensitive), then sign in again."
        )
    else:
        fix = (
            "<code>SAML_GATE_USERS</code> maps no group to staff status (no"
            " <code>staff_groups</code> or <code>superuser_groups</code>), so it is set in Django"
            " only: an administrator must tick &#x27;Staff status&#x27; for your account in the"
            " admin, or set <code>staff_groups</code>."
        )
    body = (
        "<h1>Django's admin needs staff status</h1>"
        f"<p>You are signed in as <b>{e(user.get_username())}</b>, but this Django account"
        f" {'is disabled' if not user.is_active else 'is not staff'}, and the admin's password"
        " form cannot help: sign-in goes through single sign-on only.</p>"
        f"<p class=hint>{fix}</p>"
        f"<p class=groups>Your groups, as the IdP sent them: {groups}</p>"
        "<p class=links><a href='/'>Back to the application</a>"
        "<a href='/saml/logout'>Sign out</a></p>"
    )
    return page_document("Staff status needed", body)
