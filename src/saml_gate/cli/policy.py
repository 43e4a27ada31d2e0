"""``saml-gate policy explain``: what the gate would decide for a person (``--user``) or a
service with a bearer token (``--token``) and a request, why, and which rule (and its place in
the configuration file) decided it.

It asks the gate's own decision code (:class:`~saml_gate.policy.AccessPolicy`: ``decide`` then
``refusal``), built from the same settings the gate loads (flags, variables, ``--config``), so
the reason it prints is the one the refused person's 403 page, the ``policy_denied`` event and
the log line give. Exit status: 0 for public or allowed, 1 otherwise, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from saml_gate.cli.options import LaunchError
from saml_gate.config.flags import add_flags, flag_values
from saml_gate.config.loading import load
from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.policy import AccessPolicy, AllOf, Decision, Rule
from saml_gate.policy.access import credential_refusal
from saml_gate.runtime.policy_reload import placed_policy
from saml_gate.user import SamlUser

USAGE = (
    "%(prog)s explain [--user EMAIL | --token NAME] [--groups a,b] [--attribute NAME=VALUE]"
    " [--authn-age SECONDS] [--json] METHOD URL [flags]"
)
HELP = "explain the access policy's decision for a person and a request"

PUBLIC, ALLOWED, SIGN_IN, STEP_UP, REFUSED = "public", "allowed", "sign-in", "step-up", "refused"
#: Stand-ins for the settings a policy question does not need.
_STAND_INS: Final = {"idp_metadata": "(not needed for this command)"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("explain",))
    parser.add_argument("method", help="the request's method: GET, POST...")
    parser.add_argument("url", help="the request's URL: https://app.example/admin/users")
    parser.add_argument(
        "--user", help="the signed-in person (NameID and email; default: nobody signed in)"
    )
    parser.add_argument(
        "--token",
        metavar="NAME",
        help="a service with a bearer token instead: a gate token's name or an access token's"
        " client (default: a person, --user)",
    )
    parser.add_argument(
        "--groups", default="", help="their groups, comma-separated, verbatim (default: none)"
    )
    parser.add_argument(
        "--attribute",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="one of their attributes' values, repeatable (default: none)",
    )
    parser.add_argument(
        "--authn-age",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="how long ago they signed in at the IdP (default: just now)",
    )
    parser.add_argument(
        "--authn-context", help="the authentication context of their sign-in (default: none)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    add_flags(parser, [GateSettings])


def command(args: argparse.Namespace) -> int:
    answer = explain(args)
    if args.json:
        print(json.dumps(answer, indent=2))
    else:
        for key in ("decision", "request", "user", "rule", "reason"):
            if answer.get(key):
                print(f"{key + ':':<10}{answer[key]}")
    return 0 if answer["decision"] in (PUBLIC, ALLOWED) else 1


def explain(args: argparse.Namespace) -> dict[str, Any]:
    """The decision, the deciding rule and its place, the failed condition."""
    url = urlsplit(args.url)
    if not url.scheme or not url.netloc:
        raise LaunchError(f"{args.url!r}: give a whole URL, such as https://app.example/path")
    if args.user and args.token:
        raise LaunchError("give --user or --token, not both: one credential decides a request")
    origin = f"{url.scheme}://{url.netloc}"
    given = flag_values(args, GateSettings)
    settings = load(
        GateSettings,
        given,
        fallback=_STAND_INS | {"base_url": origin, "secret_key": (secrets.token_urlsafe(32),)},
    )
    policy = placed_policy(settings)
    method = args.method.upper()
    raw_path = url.path or "/"
    scope = {
        "type": "http",
        "method": method,
        "path": unquote(raw_path),
        "raw_path": raw_path.encode(),
        "query_string": url.query.encode(),
        "headers": [(b"host", url.netloc.lower().encode())],
        "http_version": "1.1",
    }
    who = f"{args.token} (service, bearer token)" if args.token else args.user
    answer: dict[str, Any] = {"request": f"{method} {args.url}", "user": who}
    try:  # the host first, as the gate: one it does not serve is refused before any rule
        _, decision = policy.route(scope, scope["path"], url.netloc, url.scheme.lower())
    except GateError as refused:  # a host, method or path the app could read otherwise
        return answer | {"decision": REFUSED, "reason": refused.detail, "code": refused.code}
    answer["rule"] = _rule_text(policy, decision)
    if decision.public:
        return answer | {"decision": PUBLIC}
    unaccepted = credential_refusal(decision, token=bool(args.token))  # the rule's accept
    if unaccepted is not None:
        return answer | {"decision": REFUSED, "reason": unaccepted.detail, "code": unaccepted.code}
    if not args.user and not args.token:
        return answer | {"decision": SIGN_IN, "reason": "no signed-in person (give --user)"}
    now = time.time()
    caller = _service(args, now) if args.token else _person(args, settings, now)
    refusal = policy.refusal(decision, caller, now)
    if refusal is None:
        return answer | {"decision": ALLOWED}
    outcome = STEP_UP if refusal.code == "step_up_required" else REFUSED
    return answer | {"decision": outcome, "reason": refusal.detail, "code": refusal.code}


def _groups(args: argparse.Namespace) -> tuple[str, ...]:
    return tuple(g for g in args.groups.split(",") if g)


def _service(args: argparse.Namespace, now: float) -> SamlUser:
    """A service as the gate makes it of a token: no email, no attributes, never stepped up."""
    return SamlUser(
        name_id=args.token,
        email=None,
        name=args.token,
        groups=_groups(args),
        authenticated_at=now,
        asserted_at=now,
        expires_at=now + 3600,
        kind="service",
        token_name=args.token,
    )


def _person(args: argparse.Namespace, settings: GateSettings, now: float) -> SamlUser:
    groups = _groups(args)
    attributes: dict[str, tuple[str, ...]] = {}
    for item in args.attribute:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise LaunchError(f"--attribute {item!r}: give NAME=VALUE")
        attributes[name] = (*attributes.get(name, ()), value)
    if groups:
        attributes[settings.groups_attribute] = groups
    return SamlUser(
        name_id=args.user,
        email=args.user,
        name=None,
        groups=groups,
        attributes=attributes,
        authenticated_at=now - args.authn_age,
        asserted_at=now,
        expires_at=now + 3600,
        authn_context=args.authn_context,
    )


def _rule_text(policy: AccessPolicy, decision: Decision) -> str:
    rules = decision.rules if isinstance(decision, AllOf) else (decision,)
    return "; ".join(_one(policy, rule) for rule in rules)


def _one(policy: AccessPolicy, rule: Rule) -> str:
    return f"{policy.place_of(rule)} ({rule}{' public' if rule.public else ''})"
