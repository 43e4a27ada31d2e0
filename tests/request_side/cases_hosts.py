"""Hosts: the host a rule is for, read as the app reads it, or refused.

The policy has an app of its own, ``admins.apps.example`` (:data:`~.oracle.ADMINS_HOST`, a
host of ``allowed_hosts``' ``*.apps.example``), for admins only. The oracle counts a request as
being for that app when *any* reading of its host may be it (any case, any port, a trailing
dot; a second Host line; an absolute-form target's authority), so a person outside admins
served under such a request is a bypass. The gate decides on the one ``Host`` (what the app and
the upstream read), refuses what is not plainly one host (400 ``bad_host``) and hosts it does
not serve (421 ``unknown_host``); ``X-Forwarded-Host`` from a client never moves the decision.
"""

from __future__ import annotations

from tests.request_side.corpus import BAD, FAST, FORBIDDEN, Registry, http, raw, served, status
from tests.request_side.oracle import ADMINS_HOST

R = Registry("hosts", targets=("starlette", "proxy", *FAST))
ADMINS = ADMINS_HOST.encode()
#: ``unknown_host``; a page load (these send no Accept) is sent to base_url once instead.
UNKNOWN = status(303, 421)

R.add(
    "admins-host-user",
    "a person outside admins, on the admins' app",
    http("GET", "/page", (b"Host", ADMINS), host=False),
    expect=FORBIDDEN,
)
R.add(
    "admins-host-admin",
    "an admin on the admins' app (control)",
    http("GET", "/page", (b"Host", ADMINS), host=False),
    who="admins",
    expect=served("page"),
)
R.add(
    "admins-host-public",
    "a public path on the admins' app (public paths come first)",
    http("GET", "/static/app.css", (b"Host", ADMINS), host=False),
    who="anon",
    expect=served("static"),
)
R.add(
    "punycode-neighbour",
    "another app under the wildcard, in its xn-- form (control)",
    http("GET", "/page", (b"Host", b"xn--dmins-gra.apps.example"), host=False),
    expect=served("page"),
)
for slug, host, expect in [
    ("upper-case", ADMINS.upper(), FORBIDDEN),
    ("mixed-case-port", b"Admins.Apps.Example:8443", FORBIDDEN),
    ("default-port", ADMINS + b":80", FORBIDDEN),
    ("trailing-dot", ADMINS + b".", BAD),
    ("trailing-dot-port", ADMINS + b".:80", BAD),
    ("two-trailing-dots", ADMINS + b"..", BAD),
    ("idn-utf8", "ädmins.apps.example".encode(), BAD),
    ("idn-latin1", "ädmins.apps.example".encode("latin-1"), BAD),
    ("port-overflow", ADMINS + b":65616", BAD),
    ("port-sign", ADMINS + b":+80", BAD),
    ("userinfo", b"user@" + ADMINS, BAD),
    ("host-list", ADMINS + b", 127.0.0.1", BAD),
    ("percent-encoded", b"admins%2eapps.example", BAD),
    ("empty", b"", BAD),
    ("apex-of-wildcard", b"apps.example", UNKNOWN),
    ("suffix-of-another", ADMINS + b".evil.example", UNKNOWN),
    ("neighbour-with-its-name-as-suffix", b"evil" + ADMINS, served("page")),  # another app
    ("ipv6-loopback", b"[::1]", UNKNOWN),
]:
    R.add(
        f"host-{slug}",
        f"Host: {host!r} for a person outside admins",
        http("GET", "/page", (b"Host", host), host=False),
        expect=expect,
    )
R.add(
    "duplicate-host-admins-second",
    "the target's Host, then the admins' app's",
    raw(
        lambda c: (
            b"GET /page HTTP/1.1\r\nHost: " + c.host + b"\r\nHost: " + ADMINS + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
    ),
    expect=BAD,
)
R.add(
    "duplicate-host-admins-first",
    "the admins' app's Host, then the target's",
    raw(
        lambda c: (
            b"GET /page HTTP/1.1\r\nHost: " + ADMINS + b"\r\nHost: " + c.host + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
    ),
    expect=BAD,
)
R.add(
    "absolute-form-admins",
    "an absolute-form target on the admins' app, Host the target's (httptools drops the"
    " authority: the app serves the target's page, as the gate decided)",
    http("GET", b"http://" + ADMINS + b"/page"),
    expect=BAD,
)
R.add(
    "absolute-form-target-on-admins-host",
    "an absolute-form target on the target, Host the admins' app's",
    raw(
        lambda c: (
            b"GET http://" + c.host + b"/page HTTP/1.1\r\nHost: " + ADMINS + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
    ),
    expect=status(400, 403),
)
R.add(
    "x-forwarded-host-admins",
    "X-Forwarded-Host naming the admins' app, from a client (control: the app reads Host)",
    http("GET", "/page", (b"X-Forwarded-Host", ADMINS)),
    expect=served("page"),
)
R.add(
    "x-forwarded-host-away",
    "the admins' app's Host, X-Forwarded-Host naming the target",
    http(
        "GET",
        "/page",
        (b"Host", ADMINS),
        (b"X-Forwarded-Host", b"127.0.0.1"),
        (b"Forwarded", b"host=127.0.0.1"),
        host=False,
    ),
    expect=FORBIDDEN,
)
