"""Every case of the corpus against every target it names, judged by the oracle.

See :mod:`tests.request_side` for the oracle. A failure prints the raw request, the answer,
and each problem found (``BYPASS`` first).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import urlsplit

import pytest

from tests.request_side.catalogue import CORPUS
from tests.request_side.corpus import Case
from tests.request_side.oracle import (
    ALLOWED_HOSTS,
    PRINCIPALS,
    WORTHLESS,
    held_groups,
    requirement,
    satisfies,
)
from tests.request_side.servlet import effective_method, servlet_path, suffix_match
from tests.request_side.targets import PROXIED, Lab, Target, is_idp_redirect
from tests.request_side.wire import Answer, exchange, handshake

pytestmark = pytest.mark.request_side

RUNS = [(target, case) for case in CORPUS for target in case.targets]
_GATE_COOKIE = re.compile(r"(?:^|[;,]\s*)saml_gate_session\s*=")


def stays_on_site(location: str, target: Target) -> bool:
    """A redirect a browser follows to this site: a path with nothing a browser reads as a host
    (``//``, ``\\``, control characters), or an absolute URL on the target's own origin."""
    if any(ord(c) < 0x21 or c == "\\" for c in location):
        return False
    parts = urlsplit(location)
    if parts.scheme or parts.netloc:
        origin = f"{parts.scheme}://{parts.netloc}"
        allowed = origin == target.base_url or _allowed_origin(parts.scheme, parts.netloc)
        return allowed and not parts.username
    return location.startswith("/") and not location.startswith("//")


def _allowed_origin(scheme: str, netloc: str) -> bool:
    """An origin on ``ALLOWED_HOSTS``, read independently of the gate: exact names, and
    ``*.name`` for the subdomains of name."""
    if scheme not in ("http", "https") or not re.fullmatch(r"[a-z0-9.-]+(:\d+)?", netloc):
        return False
    host = netloc.split(":")[0]
    for allowed in ALLOWED_HOSTS:
        if host == allowed or (allowed.startswith("*.") and host.endswith(allowed[1:])):
            return True
    return False


def _identity_problems(case: Case, answer: Answer) -> list[str]:
    """What the servlet upstream saw: only the gate's identity headers, never its cookies."""
    text = answer.frame if case.ws else answer.body
    if not text:
        return []  # HEAD: no body to read
    seen = json.loads(text)
    pairs = [tuple(p) for p in seen["identity"]]
    problems = []
    names = Counter(name for name, _ in pairs)
    if any(n > 1 for n in names.values()):
        problems.append(f"the upstream got an identity header twice: {pairs}")
    legit = {
        (name, value)
        for who in case.who
        if who not in WORTHLESS
        for name, value in PRINCIPALS[who].identity.items()
    }
    forged = [p for p in pairs if p not in legit]
    if forged:
        problems.append(f"IDENTITY SPOOFED: the upstream got {forged}")
    if seen.get("cookie") and _GATE_COOKIE.search(seen["cookie"]):
        problems.append(f"the upstream got the gate's session cookie: {seen['cookie'][:80]}")
    if case.identity:
        public = requirement(seen["path"], seen["method"]).public
        expected = (
            [] if public or not case.who else sorted(PRINCIPALS[case.who[0]].identity.items())
        )
        if sorted(pairs) != expected:
            problems.append(f"identity seen by the upstream {sorted(pairs)}, expected {expected}")
    return problems


def sent_hosts(message: bytes, target: Target) -> list[str]:
    """Every host a server might read from the request: its Host lines and the authority of an
    absolute-form target (which uvicorn's httptools parser drops before any app or the gate
    sees the request: behind it, Host is all there is)."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    hosts = [line.split(":", 1)[1].strip() for line in head[1:] if line.lower().startswith("host:")]
    request_target = head[0].split(" ")[1] if head[0].count(" ") >= 1 else ""
    if "://" in request_target and not target.name.endswith("-fast"):
        hosts.append(request_target.split("://", 1)[1].split("/", 1)[0])
    return hosts


def judge(
    case: Case, target: Target, answer: Answer, final: Answer | None, message: bytes = b""
) -> list[str]:
    problems: list[str] = []
    served = answer.served
    if served is not None:
        resource, path, method = served
        need = requirement(path, method, sent_hosts(message, target))
        held = held_groups(case.who, need)
        if not satisfies(held, need):
            holder = ", ".join(case.who) or "anonymous"
            problems.append(
                f"BYPASS: the app served {resource!r} ({method} {path}, needs {need}) to {holder}"
            )
        if target.name in PROXIED:
            problems += _identity_problems(case, answer)
    elif case.ws and answer.status == 101:
        problems.append("101 without the app's report frame")
    for name, a in (("answer", answer), ("sign-in answer", final)):
        if a is not None and a.status >= 500:
            problems.append(f"the {name} is a server error ({a.status})")
    redirect = final if final is not None else answer
    location = redirect.header("location")
    if (
        300 <= redirect.status < 400
        and location is not None
        and not is_idp_redirect(redirect)
        and not stays_on_site(location, target)
    ):
        problems.append(f"OPEN REDIRECT: {redirect.status} to {location!r}")
    expect = case.expect
    if target.name.endswith("-fast") and (
        expect.statuses == {400} or (expect.kind == "status" and _parser_refused(answer))
    ):
        # httptools reads some request lines that h11 refuses (an absolute-form target as its
        # path, a fragment dropped) and refuses others itself before the gate sees them (a
        # lower-case method, a folded header, a 70 KB target): whatever it made of the bytes,
        # the oracle above judged what the app served.
        return problems
    if expect.kind == "status" and answer.status not in expect.statuses:
        problems.append(f"expected {expect}, got {answer.status}")
    elif expect.kind == "served" and (
        served is None or (expect.resource is not None and served[0] != expect.resource)
    ):
        what = f"{served[0]!r}" if served else f"status {answer.status}, nothing"
        problems.append(f"expected {expect} (a benign request), the app served {what}")
    elif expect.kind == "on_site":
        if expect.location is not None and (
            final is None or final.status != 303 or final.header("location") != expect.location
        ):
            got = final.summary()[:200] if final is not None else answer.summary()[:200]
            problems.append(f"expected the sign-in to end on {expect.location!r}, got {got}")
        elif final is None and not 400 <= answer.status < 500:
            problems.append(f"expected a sign-in or a refusal, got {answer.status}")
    return problems


def _parser_refused(answer: Answer) -> bool:
    """uvicorn's own 400 for bytes its HTTP parser refused (the gate never saw the request)."""
    return answer.status == 400 and answer.body == b"Invalid HTTP request received."


def _log_excerpt(entry: str) -> str:
    lines = entry.strip().splitlines()
    if len(lines) <= 12:
        return "\n".join(lines)
    return "\n".join([*lines[:2], "    ...", *lines[-8:]])


def _shown(message: bytes) -> str:
    text = repr(message)
    return (
        text if len(text) < 1200 else text[:800] + f" ...({len(message)} bytes)... " + text[-300:]
    )


@pytest.mark.parametrize(("target_name", "case"), RUNS, ids=[f"{c.id}@{t}" for t, c in RUNS])
def test_case(lab: Lab, target_name: str, case: Case) -> None:
    target = lab.target(target_name)
    message = case.build(target)  # signs the principals in first
    lab.mark()
    if case.ws:
        answer = handshake(target.port, message, ending=case.ending)
    else:
        answer = exchange(target.port, message)
    final = None
    if case.relay and is_idp_redirect(answer):
        final = lab.complete_sign_in(target, answer, PRINCIPALS["users"])
    lab.settle()
    problems = judge(case, target, answer, final, message)
    problems += [f"server log: {_log_excerpt(e)}" for e in lab.errors()]
    assert not problems, (
        f"{case.id} on {target_name}: {case.title}\n"
        + "\n".join(f"  - {p}" for p in problems)
        + f"\n--- raw request ---\n{_shown(message)}\n--- answer ---\n{answer.summary()}"
    )


def test_corpus_covers_every_class() -> None:
    counts = Counter(case.cls for case in CORPUS)
    assert len(CORPUS) >= 150, counts
    classes = ("methods", "overrides", "paths", "formats", "root-paths", "headers", "cookies")
    for cls in (*classes, "relay", "return-to", "websocket", "hosts"):
        assert counts[cls] >= 10, counts
    assert all(case.targets for case in CORPUS)


# ---------------------------------------------------------------- the instrument itself
@pytest.mark.parametrize(
    ("target", "path"),
    [
        ("/admin;x/users", "/admin/users"),
        ("/;/admin/users", "/admin/users"),
        ("/static/..;/admin/users", "/admin/users"),
        ("/static/%2e%2e/admin", "/admin"),
        ("/static/..%2Fadmin", "/admin"),
        ("/static\\..\\admin", "/admin"),
        ("//admin//users/", "/admin/users"),
        ("/admin#/users", "/admin"),
        ("http://host/admin/x?q", "/admin/x"),
        ("/admin%3Bx/users", "/admin;x/users"),
        ("/static/%252e%252e/admin", "/static/%2e%2e/admin"),
    ],
)
def test_the_upstream_reads_paths_as_servlet_containers_do(target: str, path: str) -> None:
    assert servlet_path(target) == path


@pytest.mark.parametrize(
    ("path", "mapped"),
    [
        ("/admin.json", ("admin", "/admin")),
        ("/admin.tar.gz", ("admin", "/admin")),
        ("/reports/7.xml", ("reports", "/reports/7")),
        ("/page.html", ("page", "/page.html")),
        ("/admin/users.json", ("admin", "/admin/users.json")),
    ],
)
def test_the_upstream_matches_suffixes_as_spring_mvc_did(
    path: str, mapped: tuple[str, str]
) -> None:
    assert suffix_match(path) == mapped


@pytest.mark.parametrize(
    ("method", "headers", "query", "form", "effective"),
    [
        ("post", [], "", None, "POST"),
        ("POST", [("X-HTTP-Method-Override", "delete")], "", None, "DELETE"),
        ("POST", [("x_method_override", "PUT")], "", None, "PUT"),
        ("POST", [("X-HTTP-Method", "GET"), ("X-HTTP-Method", "DELETE")], "", None, "DELETE"),
        ("POST", [], "%5Fmethod=DELETE", None, "DELETE"),
        ("POST", [], "", "_method=PATCH", "PATCH"),
        ("GET", [("X-HTTP-Method-Override", "DELETE")], "_method=DELETE", None, "GET"),
    ],
)
def test_the_upstream_honours_method_overrides(
    method: str, headers: list[tuple[str, str]], query: str, form: str | None, effective: str
) -> None:
    assert effective_method(method, headers, query, form) == effective


def test_the_upstream_serves_what_the_gate_would_refuse(lab: Lab) -> None:
    """Straight to the upstream (no gate): the differential has teeth."""
    lab.target("proxy")
    upstream = lab.upstream
    assert upstream is not None
    raw = (
        b"POST /docs;x/handbook?_method=delete HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = exchange(upstream.port, raw)
    assert answer.served == ("docs", "/docs/handbook", "DELETE")
    ws = handshake(
        upstream.port,
        b"GET /admin;x/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    assert ws.status == 101 and ws.served == ("admin", "/admin/ws", "GET")


FORM = b"Content-Type: application/x-www-form-urlencoded\r\n"
JSON_TYPE = b"Content-Type: application/json\r\n"


def _post(target: bytes, headers: bytes, body: bytes) -> bytes:
    length = b"Content-Length: %d\r\n" % len(body)
    return b"POST " + target + b" HTTP/1.1\r\nHost: x\r\n" + headers + length + b"\r\n" + body


def _get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    ("upstream", "message", "served"),
    [
        # Rack::MethodOverride: a POST without a Content-Type (or an empty one) is a form
        ("sinatra", _post(b"/docs/x", b"", b"_method=DELETE"), ("docs", "/docs/x", "DELETE")),
        ("rails", _post(b"/docs/x", b"", b"_method=DELETE"), ("docs", "/docs/x", "DELETE")),
        (
            "rails",
            _post(b"/docs/x", b"Content-Type: \r\n", b"_method=DELETE"),
            ("docs", "/docs/x", "DELETE"),
        ),
        ("symfony", _post(b"/docs/x", b"", b"_method=DELETE"), ("docs", "/docs/x", "POST")),
        # the media type cut at "," (Rack, PHP) or at a space (PHP only)
        (
            "sinatra",
            _post(
                b"/docs/x",
                b"Content-Type: application/x-www-form-urlencoded, text/plain\r\n",
                b"_method=DELETE",
            ),
            ("docs", "/docs/x", "DELETE"),
        ),
        (
            "symfony",
            _post(
                b"/docs/x",
                b"Content-Type: application/x-www-form-urlencoded text/plain\r\n",
                b"_method=DELETE",
            ),
            ("docs", "/docs/x", "DELETE"),
        ),
        (
            "sinatra",
            _post(
                b"/docs/x",
                b"Content-Type: application/x-www-form-urlencoded text/plain\r\n",
                b"_method=DELETE",
            ),
            ("docs", "/docs/x", "POST"),
        ),
        # multipart/mixed is parsed by Rack, not by PHP
        (
            "rails",
            _post(
                b"/docs/x",
                b"Content-Type: multipart/mixed; boundary=b\r\n",
                b'--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--\r\n',
            ),
            ("docs", "/docs/x", "DELETE"),
        ),
        # Laravel reads _method from JSON; Symfony does not
        (
            "laravel",
            _post(b"/docs/x", JSON_TYPE, b'{"_method": "DELETE"}'),
            ("docs", "/docs/x", "DELETE"),
        ),
        (
            "laravel",
            _post(
                b"/docs/x", b"Content-Type: application/vnd.api+json\r\n", b'{"_method": "DELETE"}'
            ),
            ("docs", "/docs/x", "DELETE"),
        ),
        (
            "symfony",
            _post(b"/docs/x", JSON_TYPE, b'{"_method": "DELETE"}'),
            ("docs", "/docs/x", "POST"),
        ),
        # PHP's names for query keys: .method, " .method", _method\0x are _method
        ("symfony", _post(b"/docs/x?.method=DELETE", b"", b""), ("docs", "/docs/x", "DELETE")),
        ("laravel", _post(b"/docs/x?+.method=DELETE", b"", b""), ("docs", "/docs/x", "DELETE")),
        ("symfony", _post(b"/docs/x?_method%00x=DELETE", b"", b""), ("docs", "/docs/x", "DELETE")),
        ("sinatra", _post(b"/docs/x?_method=DELETE", b"", b""), ("docs", "/docs/x", "POST")),
        # methods no rule may name
        ("sinatra", _post(b"/forms/x", FORM, b"_method=LINK"), ("forms", "/forms/x", "LINK")),
        ("symfony", _post(b"/forms/x", FORM, b"_method=purge"), ("forms", "/forms/x", "PURGE")),
        ("symfony", _post(b"/forms/x", FORM, b"_method=FOO"), ("forms", "/forms/x", "FOO")),
        # every Rails route ends in (.:format)
        ("rails", _get(b"/admin.json"), ("admin", "/admin", "GET")),
        ("rails", _get(b"/admin.json/"), ("admin", "/admin", "GET")),
        ("rails", _get(b"/reports/7.xml"), ("reports", "/reports/7", "GET")),
        ("rails", _get(b"/admin.tar.gz"), ("page", "/admin.tar", "GET")),
        ("sinatra", _get(b"/admin.json"), ("page", "/admin.json", "GET")),
    ],
)
def test_the_real_upstreams_run_what_the_gate_must_expect(
    lab: Lab, upstream: str, message: bytes, served: tuple[str, str, str]
) -> None:
    """Straight to each framework (no gate): the readings the gate must allow for."""
    port = int(lab.real.url(upstream).rsplit(":", 1)[1])
    lab.real.mark()
    answer = exchange(port, message.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
    assert answer.served == served, answer.summary()
    assert not lab.real.errors()
