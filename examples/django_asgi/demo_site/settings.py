"""Settings of the example Django project.

Who is signed in comes from SamlGate, which puts a :class:`saml_gate.SamlUser` in the ASGI scope
(``request.scope["user"]``); ``saml_gate.contrib.django.SamlGateUserMiddleware`` turns it into a
Django user (``request.user``), so Django's admin works through single sign-on. The users live in
a SQLite database: run ``python examples/django_asgi/manage.py migrate`` once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BASE_DIR = Path(__file__).resolve().parent


def _env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "on")


def _env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


DEBUG = _env_bool("DJANGO_DEBUG")

# Development default only: set DJANGO_SECRET_KEY anywhere the site is reachable by others.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or (
    "django-insecure-saml-gate-example-do-not-use-in-production"
)

ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver", *_env_list("DJANGO_ALLOWED_HOSTS")]
# The public host the gate is configured for (e.g. the ngrok domain) is allowed too.
_gate_host = urlsplit(os.environ.get("SAML_GATE_BASE_URL", "")).hostname
if _gate_host and _gate_host not in ALLOWED_HOSTS:
    ALLOWED_HOSTS.append(_gate_host)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # In place of django.contrib.auth.middleware.AuthenticationMiddleware: request.user is the
    # person the gate signed in.
    "saml_gate.contrib.django.SamlGateUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# How the gate's identity becomes a Django user (see saml_gate/contrib/django.py): one account
# per NameID, named by it verbatim, never an account the gate did not create; the IdP's "admins"
# group (DJANGO_SUPERUSER_GROUPS / DJANGO_STAFF_GROUPS to change) may use the admin.
SAML_GATE_USERS = {
    "username": "name_id",
    "sync_groups": True,
    "staff_groups": _env_list("DJANGO_STAFF_GROUPS"),
    "superuser_groups": _env_list("DJANGO_SUPERUSER_GROUPS") or ["admins"],
}

# The admin's forms are posted from the gate's public URL (https behind ngrok, while Django
# itself is reached over plain http): trust that origin for CSRF.
_gate_url = urlsplit(os.environ.get("SAML_GATE_BASE_URL", ""))
CSRF_TRUSTED_ORIGINS = [f"{_gate_url.scheme}://{_gate_url.netloc}"] if _gate_url.netloc else []

ROOT_URLCONF = "examples.django_asgi.demo_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# The users, groups and admin log, in .saml-gate/ (ignored by git) of the current directory.
_DB_PATH = Path(os.environ.get("DJANGO_DB_PATH") or ".saml-gate/django-example.sqlite3")
_DB_PATH.parent.mkdir(parents=True, exist_ok=True)
DATABASES: dict[str, Any] = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_DB_PATH)}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Options passed to SamlGate (asgi.py), as keyword arguments: GateSettings field names, e.g.
#   SAML_GATE = {"public_paths": ["/healthz"], "authorized_groups": ["admins"]}
# Anything not given here is read from the SAML_GATE_<NAME> environment variables, so the
# default configures the gate from the environment, except for one access rule: the admin
# asks for a sign-in less than 15 minutes old (ForceAuthn: Okta applies its MFA policy again),
# unless SAML_GATE_ACCESS_RULES says otherwise.
SAML_GATE: dict[str, Any] = {}
if not os.environ.get("SAML_GATE_ACCESS_RULES"):
    SAML_GATE["access_rules"] = ["/admin/ max_authn_age=900"]
