"""The request side: methods, method overrides, path encodings, root paths, who is local, and
which gate a session cookie belongs to. Attacks that an HTTP client would tidy away go through
uvicorn on raw sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any
from urllib.parse import unquote_to_bytes

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from saml_gate import SamlGate
from saml_gate.ip_addresses import ClientAddresses
from saml_gate.policy.hosts import is_number
from saml_gate.policy.request_line import php_name
from tests.security.test_fuzz import call_asgi
from tests.support import (
    BASE_URL,
    IDP_ENTITY_ID,
    SECRET,
    FrozenClock,
    Harness,
    decode_redirect_request,
    gate_options,
    idp_metadata,
    make_app,
)
from tests.test_websocket_uvicorn import serve, session_cookie

pytestmark = pytest.mark.anyio
JSON = {"accept": "application/json"}


async def raw(address: str, request: bytes) -> tuple[int, dict[str, Any] | None]:
    """Send ``request`` as written; (status, JSON body or None)."""
    host, port = address.split(":")
    answer = b""
    stream = await anyio.connect_tcp(host, int(port))
    async with stream:
        await stream.send(request)
        with anyio.fail_after(30):
            try:
                while True:
                    answer += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError):
                pass
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    try:
        return status, json.loads(body)
    except ValueError:
        return status, None


def request(method: str, target: str, cookie: str, *headers: str) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1:8000", "Accept: application/json"]
    lines += [f"Cookie: {cookie}", *headers, "Connection: close", "", ""]
    return "\r\n".join(lines).encode("latin-1")


@pytest.fixture
async def editors_only(make_harness: Any) -> Harness:
    """POST (and overrides to it) under /private/ needs ``editors``; alice is not one."""
    h: Harness = make_harness(access_rules=["/private/ methods=POST|PUT|DELETE groups=editors"])
    await h.login()
    return h


# ---------------------------------------------------------------------- methods
@pytest.mark.parametrize("method", ["post", "Post", "pOST", "GEt", "P0ST", "PO_ST"])
async def test_a_method_that_is_not_an_upper_case_token_is_refused(
    editors_only: Harness, method: str
) -> None:
    async with serve(editors_only.gate) as address:
        status, body = await raw(
            address, request(method, "/private/x", session_cookie(editors_only))
        )
    assert status == 400 and body is not None and body["error"] == "bad_method"


async def test_the_upper_case_method_meets_its_rule(editors_only: Harness) -> None:
    async with serve(editors_only.gate) as address:
        cookie = session_cookie(editors_only)
        post = await raw(address, request("POST", "/private/x", cookie, "Content-Length: 0"))
        get = await raw(address, request("GET", "/private/x", cookie))
    assert post[0] == 403 and post[1] is not None and post[1]["error"] == "forbidden"
    assert get[0] == 200


@pytest.mark.parametrize(
    "override",
    [
        "X-HTTP-Method-Override: POST",
        "x-http-method-override: delete",
        "X-HTTP-Method: PUT",
        "X-Method-Override: Post",
        "X_HTTP_Method_Override: POST",
        "x-http_method-override: POST",
    ],
)
async def test_a_method_override_header_must_meet_the_rule_of_the_method_it_names(
    editors_only: Harness, override: str
) -> None:
    async with serve(editors_only.gate) as address:
        status, body = await raw(
            address, request("GET", "/private/x", session_cookie(editors_only), override)
        )
    assert status == 403 and body is not None and body["error"] == "forbidden"


@pytest.mark.parametrize("query", ["_method=POST", "_method=delete", "a=1&_method=PUT"])
async def test_a_method_override_in_the_query_must_meet_its_rule(
    editors_only: Harness, query: str
) -> None:
    r = await editors_only.client.get("/private/x?" + query, headers=JSON)
    assert r.status_code == 403 and r.json()["error"] == "forbidden"


async def test_a_garbled_method_override_is_refused(editors_only: Harness) -> None:
    r = await editors_only.client.get(
        "/private/x", headers={**JSON, "X-HTTP-Method-Override": "PO ST"}
    )
    assert r.status_code == 400 and r.json()["error"] == "bad_method"


async def test_options_passthrough_does_not_pass_a_method_override(make_harness: Any) -> None:
    h: Harness = make_harness(options_passthrough=True)
    r = await h.client.options("/private/x", headers={"X-HTTP-Method-Override": "DELETE"})
    assert r.status_code == 401  # the DELETE it names needs a sign-in


# ---------------------------------------------------------------------- paths
@pytest.mark.parametrize(
    "target",
    [
        "/private;x/page",
        "/private;/page",
        "/private;jsessionid=1/page",
        "/;/private/page",
        "/public/..;/private/page",
        "/private/page;x",
        "/public%2F..%2Fprivate/page",
        "/public%2f..%2fprivate/page",
        "/public/%2e%2e/private/page",
        "/public/%2E%2E/private/page",
        "/public/x%5C..%5Cprivate",
        "/private%3Bx/page",
        "/pub%256cic/x",
        "/private/%00",
    ],
)
async def test_path_parameters_and_encoded_separators_are_refused(
    make_harness: Any, target: str
) -> None:
    h: Harness = make_harness(public_paths=["/public/"], access_rules=["/private/ groups=finance"])
    await h.login()
    async with serve(h.gate) as address:
        status, body = await raw(address, request("GET", target, session_cookie(h)))
    assert status == 400 and body is not None and body["error"] in ("bad_path", "bad_request")


async def test_allow_path_parameters_matches_the_path_a_servlet_serves(make_harness: Any) -> None:
    h: Harness = make_harness(
        allow_path_parameters=True,
        public_paths=["/public/"],
        access_rules=["/private/ groups=finance"],
    )
    await h.login()
    async with serve(h.gate) as address:
        cookie = session_cookie(h)
        protected = await raw(address, request("GET", "/private;jsessionid=1/page", cookie))
        borrowed = await raw(address, request("GET", "/public;x/../private/page", cookie))
        encoded = await raw(address, request("GET", "/private%3Bx/page", cookie))
    assert protected[0] == 403 and protected[1] is not None
    assert protected[1]["error"] == "forbidden"
    assert borrowed[0] == 400  # dot segments stay refused
    assert encoded[0] == 400  # an encoded ';' is not a parameter to any server


# ---------------------------------------------------------------------- root paths
@pytest.fixture
def mounted(idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Any) -> httpx.AsyncClient:
    """The gate inside a Starlette Mount at /app, base_url saying so."""
    gate = SamlGate(
        make_app(),
        **gate_options(
            idp_keys,
            sp_keys,
            clock,
            str(tmp_path),
            base_url=BASE_URL + "/app",
            access_rules=["/private/ groups=finance"],
            public_paths=["/public/"],
        ),
    )
    outer = Starlette(routes=[Mount("/app", app=gate)])
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=outer), base_url=BASE_URL)


async def sign_in_mounted(
    client: httpx.AsyncClient, idp_keys: Any, clock: FrozenClock, path: str, groups: list[str]
) -> httpx.Response:
    from saml_gate.devidp.response import ResponseSpec

    r = await client.get(path, headers={"accept": "text/html"})
    assert r.status_code == 303, r.text
    authn, relay = decode_redirect_request(r.headers["location"])
    assert authn.get("AssertionConsumerServiceURL") == BASE_URL + "/app/saml/acs"
    spec = ResponseSpec(
        issuer=IDP_ENTITY_ID,
        destination=BASE_URL + "/app/saml/acs",
        audience=BASE_URL + "/app/saml/metadata",
        name_id="alice@example.com",
        attributes={"email": ["alice@example.com"], "groups": groups},
        now=clock.datetime,
        in_response_to=authn.get("ID"),
    )
    harness = Harness(None, client, idp_keys, idp_keys, clock)  # type: ignore[arg-type]
    return await client.post(
        "/app/saml/acs", data={"SAMLResponse": harness.response_b64(spec), "RelayState": relay}
    )


async def test_under_a_mount_the_endpoints_and_rules_use_the_routed_path(
    mounted: httpx.AsyncClient, idp_keys: Any, clock: FrozenClock
) -> None:
    async with mounted as client:
        metadata = await client.get("/app/saml/metadata")
        assert metadata.status_code == 200
        assert b'Location="http://127.0.0.1:8000/app/saml/acs"' in metadata.content
        assert (await client.get("/app/public/x", headers=JSON)).json() == {"anonymous": True}
        done = await sign_in_mounted(client, idp_keys, clock, "/app/private/page", ["users"])
        assert done.status_code == 303 and done.headers["location"] == "/app/private/page"
        # the /private/ rule applies to /app/private/… (the app routes /private/…)
        r = await client.get("/app/private/page", headers=JSON)
        assert r.status_code == 403 and r.json()["error"] == "forbidden"
        assert (await client.get("/app/", headers=JSON)).status_code == 200


async def test_the_pending_sign_in_cookie_is_scoped_to_the_mounted_acs(
    mounted: httpx.AsyncClient,
) -> None:
    async with mounted as client:
        r = await client.get("/app/private/page", headers={"accept": "text/html"})
    pending = [c for c in r.headers.get_list("set-cookie") if c.startswith("saml_gate_req_")]
    assert pending and all("Path=/app/saml/acs" in c for c in pending)


# ---------------------------------------------------------------------- who is local
@pytest.mark.parametrize(
    "headers",
    [
        [("X-Real-IP", "203.0.113.9")],
        [("Forwarded", "for=203.0.113.9;proto=https")],
        [("Forwarded", 'for="[2001:db8::1]:443"')],
        [("X-Forwarded-For", "127.0.0.1"), ("X-Forwarded-For", "203.0.113.9")],
        [("True-Client-IP", "203.0.113.9")],
        [("CF-Connecting-IP", "203.0.113.9")],
        [("X-Forwarded-For", "garbage")],
    ],
)
async def test_status_and_details_are_not_shown_to_a_client_any_proxy_reports_as_remote(
    make_harness: Any, headers: list[tuple[str, str]]
) -> None:
    h: Harness = make_harness()
    assert (await h.client.get("/saml/status")).status_code == 200  # loopback, no proxy
    r = await h.client.get("/saml/status", headers=headers)
    assert r.status_code == 403
    bad = await h.client.post(
        "/saml/acs", data={"SAMLResponse": "x"}, headers=[*headers, *JSON.items()]
    )
    assert "detail" not in bad.json()


async def test_trusted_proxies_decide_the_client_address_in_the_auth_log(
    make_harness: Any,
) -> None:
    events: list[Any] = []
    h: Harness = make_harness(trusted_proxies=["127.0.0.1", "10.0.0.0/8"], on_event=events.append)
    chain = "198.51.100.7, 203.0.113.9, 10.1.2.3"
    await h.client.get("/private/x", headers={**JSON, "X-Forwarded-For": chain})
    await h.client.get("/saml/nope", headers={"X-Forwarded-For": chain})
    await h.gate.core.events.drain()
    assert events[-1].client == "203.0.113.9"  # the first hop no trusted proxy vouches for


def test_client_addresses() -> None:
    addresses = ClientAddresses(["127.0.0.1", "10.0.0.0/8"])
    xff = [(b"x-forwarded-for", b"198.51.100.7, 10.9.9.9")]
    assert addresses.client("127.0.0.1", xff) == "198.51.100.7"
    assert addresses.client("203.0.113.1", xff) == "203.0.113.1"  # untrusted peer: no XFF
    forwarded = [(b"forwarded", b'for="[2001:db8::1]:80", for=10.0.0.2')]
    assert addresses.client("127.0.0.1", forwarded) == "[2001:db8::1]:80"
    assert addresses.client("127.0.0.1", [(b"x-forwarded-for", b", 10.0.0.1")]) == "127.0.0.1"
    assert ClientAddresses.is_local("127.0.0.1", [(b"x-forwarded-for", b"::1, 127.0.0.2")])
    assert not ClientAddresses.is_local("10.0.0.1", [])
    assert not ClientAddresses.is_local("::ffff:127.0.0.1", [(b"x-real-ip", b"1.2.3.4")])


# ---------------------------------------------------------------------- whose cookie
async def test_a_session_cookie_from_another_gate_configuration_is_refused(
    make_harness: Any, idp_keys: Any, sp_keys: Any, clock: FrozenClock, tmp_path: Any
) -> None:
    h: Harness = make_harness()
    await h.login()
    cookie = session_cookie(h)
    assert (await h.client.get("/private/x", headers=JSON)).status_code == 200
    other_sp = SamlGate(
        make_app(),
        **gate_options(
            idp_keys, sp_keys, clock, str(tmp_path), entity_id="https://other.example/sp"
        ),
    )
    other_idp = SamlGate(
        make_app(),
        **gate_options(
            idp_keys,
            sp_keys,
            clock,
            str(tmp_path),
            idp_metadata=idp_metadata(idp_keys, entity_id="https://another-idp.example"),
        ),
    )
    for gate in (other_sp, other_idp):
        transport = httpx.ASGITransport(app=gate)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            r = await client.get("/private/x", headers={**JSON, "Cookie": cookie})
            assert r.status_code == 401 and r.json()["error"] == "not_authenticated"


def test_the_demo_never_takes_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from saml_gate import cli
    from saml_gate.cli import demo, server

    served: list[Any] = []
    monkeypatch.setenv("SAML_GATE_SECRET_KEY", SECRET)
    monkeypatch.setenv("SAML_GATE_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(demo, "example_factory", lambda: None)
    monkeypatch.setattr(server, "serve", lambda app, *rest: served.append(app) or 0)
    args = cli.build_parser().parse_args(["demo"])
    assert args.func(args) == 0  # not cli.main: it leaves with os._exit once ngrok is imported
    assert served[0].settings.secret_key != (SECRET,)


@pytest.mark.parametrize(
    "query",
    [
        "%5Fmethod=POST",
        "_%6Dethod=DELETE",
        "%5f%6d%65thod=put",
        # what PHP names _method (Symfony and Laravel read $_GET), and any case
        ".method=DELETE",
        "%2Emethod=DELETE",
        "+.method=DELETE",
        "+_method=DELETE",
        "_method%00x=DELETE",
        "_method[]=DELETE",
        ".method[a]=DELETE",
        "_METHOD=DELETE",
    ],
)
async def test_an_encoded_method_override_name_is_read_too(
    editors_only: Harness, query: str
) -> None:
    async with serve(editors_only.gate) as address:
        status, body = await raw(
            address, request("GET", "/private/x?" + query, session_cookie(editors_only))
        )
    assert status == 403 and body is not None and body["error"] == "forbidden"


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        pytest.param([], "_method=DELETE", id="no-content-type"),
        pytest.param(["Content-Type: "], "_method=DELETE", id="empty-content-type"),
        pytest.param(["Content-Type: application/json"], '{"_method":"DELETE"}', id="json"),
        pytest.param(["Content-Type: text/plain"], "_method=DELETE", id="text"),
        pytest.param(
            ["Content-Type: application/x-www-form-urlencoded, text/plain"],
            "_method=DELETE",
            id="form-and-text",
        ),
        pytest.param(
            ["Transfer-Encoding: chunked"], "e\r\n_method=DELETE\r\n0\r\n\r\n", id="chunked"
        ),
    ],
)
async def test_every_post_with_a_body_must_meet_the_rules_of_every_method(
    make_harness: Any, headers: list[str], body: str
) -> None:
    """Whatever its Content-Type: Rack reads a POST without one as a form, Laravel reads JSON
    (tests/request_side asks them)."""
    h: Harness = make_harness(access_rules=["/private/ methods=DELETE groups=editors"])
    await h.login()
    if not any(line.startswith("Transfer-Encoding") for line in headers):
        headers = [*headers, f"Content-Length: {len(body)}"]
    message = request("POST", "/private/x", session_cookie(h), *headers) + body.encode()
    async with serve(h.gate) as address:
        status, answer = await raw(address, message)
    assert status == 403 and answer is not None and answer["error"] == "forbidden"


@pytest.mark.parametrize(
    "framing",
    [["Content-Length: 0"], ["Content-Length: 000"], []],
    ids=["length-0", "length-000", "http-1.1-without-length"],
)
async def test_a_post_without_a_body_needs_only_its_own_rule(
    make_harness: Any, framing: list[str]
) -> None:
    h: Harness = make_harness(access_rules=["/private/ methods=DELETE groups=editors"])
    await h.login()
    async with serve(h.gate) as address:
        status, _ = await raw(address, request("POST", "/private/x", session_cookie(h), *framing))
    assert status == 200


async def test_method_override_in_body_off_reads_no_body(make_harness: Any) -> None:
    off: Harness = make_harness(
        access_rules=["/private/ methods=DELETE groups=editors"], method_override_in_body=False
    )
    await off.login()
    form = {"_method": "DELETE"}
    assert (await off.client.post("/private/x", data=form, headers=JSON)).status_code == 200


async def test_a_post_with_a_body_meets_the_rule_of_a_method_no_rule_names(
    make_harness: Any,
) -> None:
    """A public POST-only rule before a stricter rule for everything else: ``_method=PUT`` in
    the body (Rails, Symfony) would reach what only editors may."""
    h: Harness = make_harness(
        access_rules=["/private/ methods=POST public", "/private/ groups=editors"]
    )
    await h.login()
    assert (await h.client.post("/private/x", headers=JSON)).status_code == 200
    refused = await h.client.post("/private/x", data={"_method": "PUT"}, headers=JSON)
    assert refused.status_code == 403


#: Query keys, percent-encoded, whose PHP variable name php_name must find as PHP does.
PHP_KEYS = [
    "_method",
    ".method",
    "%2Emethod",
    "+_method",
    "%20.method",
    "++.method",
    "%09_method",
    "_method%00x",
    "%00_method",
    "_method[",
    "_method[]",
    "_method[]x",
    "_method[a",
    "_method[a]",
    "_method[a][b]",
    "_method[[",
    "_method[.x",
    "_method[ x",
    "_method]",
    "[_method",
    "_method.",
    "_method+",
    ".method[",
    "a.b c[d.e",
    "a[b]c[d",
    "x.y[]",
    "%5B",
    "+",
]


def test_php_names_query_keys_as_php_itself_does() -> None:
    """The same keys through PHP's own parse_str (php_register_variable_ex, as $_GET)."""
    if shutil.which("php") is None:
        pytest.skip("needs PHP: apt-get install php-cli (.ci/run does)")
    script = (
        "foreach (json_decode(stream_get_contents(STDIN)) as $key) {"
        " parse_str($key . '=v', $out);"
        " echo json_encode((string) (array_key_first($out) ?? '')), \"\\n\"; }"
    )
    result = subprocess.run(
        ["php", "-r", script], input=json.dumps(PHP_KEYS), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    php = [json.loads(line) for line in result.stdout.splitlines()]
    ours = [php_name(unquote_to_bytes(key.replace("+", " "))).decode("latin-1") for key in PHP_KEYS]
    assert ours == php


@pytest.mark.parametrize("target", ["/private#/x", "/private/x#y", "/private%23/x"])
async def test_a_fragment_in_the_target_is_refused(make_harness: Any, target: str) -> None:
    h: Harness = make_harness(access_rules=["/private/ groups=finance"])
    await h.login()
    async with serve(h.gate) as address:
        status, body = await raw(address, request("GET", target, session_cookie(h)))
    assert status == 400 and body is not None and body["error"] == "bad_path"


@pytest.mark.parametrize("rule", ["/private/x groups=finance", r"re:/private/\w+ groups=finance"])
async def test_exact_and_pattern_rules_also_decide_the_path_with_a_trailing_slash(
    make_harness: Any, rule: str
) -> None:
    h: Harness = make_harness(access_rules=[rule])
    await h.login()
    for path in ("/private/x", "/private/x/"):
        r = await h.client.get(path, headers=JSON)
        assert r.status_code == 403, path


# ---------------------------------------------------------------------- numbers: ASCII digits
@pytest.mark.parametrize("text", ["\u00b2", "\u0663", "\uff18", "1\u00b2", "", "-1", "+1", " 1"])
def test_only_ascii_digits_are_a_number(text: str) -> None:
    assert not is_number(text)
    assert is_number("0") and is_number("65535")


@pytest.mark.parametrize("length", [b"\xb2", b"\xd9\xa3", b"1\xb2"])
async def test_a_content_length_in_other_digits_is_no_500_at_the_acs(
    make_harness: Any, length: bytes
) -> None:
    """uvicorn (h11) refuses such a length itself; an ASGI server that passes it on must not
    make the ACS fail (``int("\u00b2")`` raised)."""
    h: Harness = make_harness()
    form = [(b"content-type", b"application/x-www-form-urlencoded"), (b"content-length", length)]
    assert await call_asgi(h.gate, [b"SAMLResponse=bm90IHhtbA%3D%3D"], form) == 400
