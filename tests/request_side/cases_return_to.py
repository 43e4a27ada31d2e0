"""``return_to`` URLs for other hosts (forward-auth): the classic open redirect of the mode.

The gates allow ``allowed.example`` and the subdomains of ``apps.example``
(:data:`~tests.request_side.oracle.ALLOWED_HOSTS`). Each case asks ``/saml/login`` to return to
an absolute URL; the hostile ones dress another host up as an allowed one (a suffix, userinfo,
backslashes, encodings, whitespace, other schemes) and must be refused up front (400); the
controls sign in and must land exactly on the allowed URL. Whatever happens, the oracle checks
that no redirect leaves the site or the allowed hosts.
"""

from __future__ import annotations

from tests.request_side import cases_relay as relay
from tests.request_side.corpus import BAD, Expect, Registry, on_site

R = Registry("return-to")


def login(slug: str, return_to: bytes | str, title: str, expect: Expect = BAD) -> None:
    relay.login(slug, return_to, title, expect, registry=R)


ALLOWED = "https%3A%2F%2Fallowed.example%2Fpage%3Fa%3D1"
login("control-allowed", ALLOWED, "an allowed host", on_site("https://allowed.example/page?a=1"))
login(
    "control-subdomain",
    "https://wiki.apps.example/x",
    "a subdomain of *.apps.example",
    on_site("https://wiki.apps.example/x"),
)
login("other-host", "https://evil.example/", "https://evil.example/")
login("protocol-relative", "//allowed.example/", "//allowed.example/ (no scheme)")
login("suffix", "https://allowed.example.evil.com/", "allowed.example as a prefix of evil.com")
login("prefix", "https://evilallowed.example/", "a name ending in allowed.example")
login("parent-of-wildcard", "https://apps.example/", "*.apps.example does not cover apps.example")
login("wildcard-suffix", "https://x.apps.example.evil.com/", "*.apps.example then .evil.com")
login("userinfo", "https://allowed.example@evil.com/", "userinfo: allowed.example@evil.com")
login("userinfo-encoded", "https://allowed.example%40evil.com/", "userinfo, @ encoded once")
login("userinfo-colon", "https://allowed.example:443@evil.com/", "userinfo with a port-like part")
login("backslash-authority", b"https://evil.com\\allowed.example/", "evil.com\\allowed.example")
login("backslash-userinfo", b"https://allowed.example\\@evil.com/", "allowed.example\\@evil.com")
login("backslashes-scheme", b"https:\\\\evil.com/", "https:\\\\evil.com")
login("one-slash", "https:/evil.com/", "https:/evil.com")
login("encoded-slashes", "https:%2F%2Fevil.com/", "https:%2F%2F: slashes encoded twice")
login("double-encoded", "https%253A%252F%252Fevil.com", "the whole URL encoded twice")
login("encoded-dot", "https://allowed.example%2eevil.com/", "%2e in the host")
login("tab-in-host", "https://allowed.example%09.evil.com/", "a tab in the host")
login("leading-space", "%20https://allowed.example/", "a leading space")
login("crlf", "https://allowed.example/%0D%0ASet-Cookie:%20a=1", "CR LF after the host")
login("path-double-slash", "https://allowed.example//evil.com/", "//evil.com as the path")
login("path-encoded-slashes", "https://allowed.example/%2F%2Fevil.com", "/%2F%2Fevil.com")
login("javascript", "javascript://allowed.example/%250Aalert(1)", "javascript: with a host")
login("data", "data:text/html,<script>alert(1)</script>", "a data: URL")
login("ftp", "ftp://allowed.example/", "another scheme on an allowed host")
login("ipv6-lookalike", "https://[::1]/", "a bracketed address not listed")
login("unicode-dot", "https://allowed.example%E3%80%82evil.com/", "an ideographic full stop")
login("fragment-host", "https://evil.com#@allowed.example/", "allowed.example after a #")
login("query-host", "https://evil.com?@allowed.example/", "allowed.example after a ?")

# Ports in digits other than ASCII's: str.isdigit says yes to all of these.
login("superscript-port", "https://allowed.example:%C2%B2/", "a superscript two as the port")
login("arabic-indic-port", "https://allowed.example:%D9%A3/", "an Arabic-Indic three as the port")
login("fullwidth-port", "https://allowed.example:%EF%BC%98%EF%BC%90/", "fullwidth 80 as the port")
login("kelvin-sign-host", "https://wi%E2%84%AAi.apps.example/", "a Kelvin sign, lower-cased to k")
