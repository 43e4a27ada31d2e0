"""Settings of access, declared: sessions, the access policy, cookies and the clock.

Each group is a frozen dataclass of declared fields (see :mod:`saml_gate.config.declaration`);
:class:`~saml_gate.config.settings.GateSettings` inherits them all.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, get_args

from saml_gate.config import checks
from saml_gate.config.declaration import SECONDS, declare, setting
from saml_gate.config.kinds import BOOL, CALLABLE, MIN_SECRET_LENGTH, RULES, SECRETS, TEXT
from saml_gate.config.value_types import SameSite
from saml_gate.policy import Rule


@dataclass(frozen=True, kw_only=True)
class SessionFields:
    """Signed sessions and sign-ins in progress: secrets and lifetimes."""

    GROUP: ClassVar[str] = "session"
    TITLE: ClassVar[str] = "Sessions: the signing secret and lifetimes"

    secret_key: tuple[str, ...] = field(
        metadata=declare(
            help=f"session signing secret(s), ≥ {MIN_SECRET_LENGTH} characters; a list rotates:"
            " the first signs, all verify",
            kind=SECRETS,
            flag_help=f"session signing secret(s), at least {MIN_SECRET_LENGTH} characters, the"
            " first signs. Shown to every user in `ps`: prefer --secret-key-file or"
            " SAML_GATE_SECRET_KEY",
        )
    )
    maximum_duration: float = setting(
        8 * 3600.0,
        help="absolute session lifetime (also capped by the IdP's SessionNotOnOrAfter)",
        check=checks.positive,
    )
    inactivity_timeout: float = setting(
        3600.0,
        help="idle timeout in seconds",
        check=checks.positive,
    )
    login_timeout: float = setting(
        600.0,
        help="how long a started sign-in stays valid",
        range=(30, 3600),
        unit=SECONDS,
    )


@dataclass(frozen=True, kw_only=True)
class PolicyFields:
    """Who may reach which path."""

    GROUP: ClassVar[str] = "policy"
    TITLE: ClassVar[str] = "Access policy: who may reach which path"

    authorized_groups: tuple[str, ...] = setting(
        (),
        help="only members of one of these groups get in (403 otherwise)",
    )
    access_rules: tuple[Rule, ...] = setting(
        (),
        help="per-path rules, first match wins (see [Access policy](#access-policy)); the"
        " variable separates rules with `;`",
        kind=RULES,
        flag="--rule",
        flag_help="access rule, repeatable, first match wins: '/admin/ groups=admins',"
        " '/static/ public', 're:/api/.* authenticated max_authn_age=600'",
    )
    options_passthrough: bool = setting(
        False,
        help="pass every `OPTIONS` request (CORS preflight) to the app without sign-in, as"
        " ngrok's option",
    )
    method_override_in_body: bool = setting(
        True,
        help="the app may honour `_method` in a POST body (Rails, Sinatra, Laravel, Symfony,"
        " Spring), which the gate does not read: every POST with a body, whatever its type, must"
        " then also be allowed under every other method (set `false` if the app does not)",
    )
    allow_path_parameters: bool = setting(
        False,
        help="accept `;` path parameters (`/a;jsessionid=1/b`), matching rules on the path"
        " without them as servlet containers serve it (refused with 400 otherwise)",
    )
    public_paths: tuple[str, ...] = setting(
        (),
        help="served without sign-in: `/static/` (prefix: trailing slash) or `/healthz` (exact)",
        check=checks.absolute_paths,
    )
    api_paths: tuple[str, ...] = setting(
        (),
        help="routes for programs: a request there without a session always gets 401 JSON"
        " with the `login_url`, never a redirect to sign in, whatever its `Accept` (`/api/`,"
        " prefix with a trailing slash, or an exact path)",
        check=checks.absolute_paths,
    )
    config_file: str | None = setting(
        None,
        help="a `saml-gate.toml` of settings and `[[rules]]` tables (see [The configuration"
        " file](#the-configuration-file)); keywords, flags and variables win over it; its access"
        " policy is reloaded when it changes",
        kind=TEXT,
        flag="--config",
        shown_default="none",
    )


@dataclass(frozen=True, kw_only=True)
class CookieFields:
    """The attributes of the cookies the gate sets."""

    GROUP: ClassVar[str] = "cookies"
    TITLE: ClassVar[str] = "Cookies"

    cookie_prefix: str = setting(
        "saml_gate",
        help="cookie names start with it",
        check=checks.cookie_name_part,
    )
    cookie_secure: bool | None = setting(
        None,
        help="the Secure cookie attribute",
        kind=BOOL,
        shown_default="when `base_url` is https",
    )
    cookie_samesite: SameSite = setting(  # noqa: RUF009 (returns a field)
        "lax",
        help="SameSite of the session cookie (`lax` survives the IdP's redirect back)",
        choices=get_args(SameSite),
    )
    cookie_domain: str | None = setting(
        None,
        help="Domain attribute of the cookies: `example.com` lets one sign-in cover its"
        " subdomains (forward-auth, `allowed_hosts`)",
        kind=TEXT,
        shown_default="the host of each response only",
    )


@dataclass(frozen=True, kw_only=True)
class TimingFields:
    """The clock every time check reads, and its tolerance."""

    GROUP: ClassVar[str] = "timing"
    TITLE: ClassVar[str] = "Clock"

    clock_skew: float = setting(
        90.0,
        help="seconds of tolerance on every time check",
        range=(0, 600),
        unit=SECONDS,
    )
    clock: Callable[[], float] = setting(  # noqa: RUF009 (returns a field)
        time.time,
        help="the clock (a test hook)",
        kind=CALLABLE,
        env=False,
        compare=False,
        documented=False,
    )
