"""Settings of the example Django project.

Deliberately small: no database, no sessions, no Django auth. Who is signed in comes from
SamlGate, which puts a :class:`saml_gate.SamlUser` in the ASGI scope (``request.scope["user"]``).
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

# The page needs no Django app: add "django.contrib.contenttypes", "django.contrib.auth", ...
# (and a database) only if your views use models.
INSTALLED_APPS: list[str] = []

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "examples.django_asgi.demo_site.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": False,
        "OPTIONS": {"context_processors": []},
    }
]

# No database: nothing on the page touches one.
DATABASES: dict[str, Any] = {}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Options passed to SamlGate (asgi.py), as keyword arguments: GateSettings field names, e.g.
#   SAML_GATE = {"public_paths": ["/healthz"], "authorized_groups": ["admins"]}
# Anything not given here is read from the SAML_GATE_<NAME> environment variables, so the
# default (empty) configures the gate entirely from the environment.
SAML_GATE: dict[str, Any] = {}
