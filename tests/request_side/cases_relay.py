"""RelayState and return paths: where the browser lands after signing in.

Each case starts a sign-in anonymously (``/saml/login?return_to=...``, or a navigation to a
protected page) and, when the gate sends the browser to the IdP, completes it with a signed
Response for ``users``: the gate's final redirect must stay on this site (a relative path, no
``//``, no ``\\``, no control characters, no scheme). A return path that cannot be kept on the
site is refused up front (400).
"""

from __future__ import annotations

from tests.request_side.corpus import BAD, Expect, Registry, http, on_site

R = Registry("relay")
HTML = (b"Accept", b"text/html")


def login(
    slug: str, return_to: bytes | str, title: str, expect: Expect = BAD, registry: Registry = R
) -> None:
    """A case asking ``/saml/login`` to return to ``return_to`` after signing in."""
    value = return_to if isinstance(return_to, bytes) else return_to.encode("latin-1")
    registry.add(
        slug,
        title,
        http("GET", b"/saml/login?return_to=" + value, HTML),
        who="anon",
        expect=expect,
        relay=True,
    )


login("control", "/ok/path", "a plain return path", on_site("/ok/path"))
login("control-query", "/ok/path%3Fa%3D1", "a return path with a query", on_site("/ok/path?a=1"))
login("control-empty", "", "an empty return_to: the site's root", on_site("/"))
login("protocol-relative", "//evil.example", "//evil.example")
login("absolute", "https://evil.example/", "https://evil.example/")
login("scheme-one-slash", "http:/evil.example", "http:/evil.example")
login("backslash", b"/\\evil.example", "/\\evil.example")
login("backslash-first", b"\\\\evil.example", "\\\\evil.example")
login("encoded-slashes", "%2F%2Fevil.example", "%2F%2Fevil.example (decoded: //evil.example)")
login("double-encoded-slashes", "%252F%252Fevil.example", "%252F%252F, decoded once")
login("slash-double-encoded", "/%252F%252Fevil.example", "/%252F%252F: //evil after decoding")
login("tab", "/%09/evil.example", "/\\t/evil.example")
login("encoded-backslash", "/%5Cevil.example", "/%5Cevil.example")
login("triple-slash", "///evil.example", "///evil.example")
login("leading-space", "%20//evil.example", "' //evil.example'")
login("javascript", "javascript:alert(1)", "javascript:alert(1)")
login("crlf", "/x%0D%0ASet-Cookie:%20a=1", "a CR LF header injection")
login("very-long", "/" + "a" * 3000, "a 3000-character return path")
login("dot-slash-slash", "/.//evil.example", "/.//evil.example (a path on this site)", on_site())

for slug, target in [
    ("navigate-double-slash", b"//evil.example/x"),
    ("navigate-backslash", b"/\\evil.example/x"),
    ("navigate-encoded-slashes", b"/%2F%2Fevil.example"),
    ("navigate-query", b"/page?next=//evil.example"),
]:
    R.add(
        slug,
        f"a navigation to {target.decode()} anonymously",
        http("GET", target, HTML),
        who="anon",
        expect=on_site(),
        relay=True,
    )
