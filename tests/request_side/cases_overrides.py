"""Method overrides the gate does not see: ``_method`` in a POST's body, and query keys that PHP
reads as ``_method``.

What the real upstreams do with them (each case runs against all of them; asked directly in
``test_request_side.py``, ``test_the_real_upstreams_run_the_overrides_the_gate_must_expect``):

* Rack 2.2's ``Rack::MethodOverride`` (Sinatra, Rails) takes ``_method`` from whatever
  ``Rack::Request#POST`` parses: a form, a multipart body (``multipart/mixed`` too), and a POST
  *without* a Content-Type or with an empty one; it reads the media type up to ``;`` or ``,``
  (``application/x-www-form-urlencoded, text/plain`` is a form). It runs any of GET HEAD PUT
  POST DELETE OPTIONS PATCH LINK UNLINK.
* PHP fills ``$_POST`` for a form or multipart type cut at ``;``, ``,`` or a space, and names
  query keys its own way (``.method`` is ``_method``); Symfony 5.4 takes a POST's method from
  ``X-HTTP-Method-Override``, else ``_method`` in the body, else in the query, and runs any
  upper-case word (``PURGE``, ``FOO``).
* Laravel 8 reads a JSON body (any type containing ``/json`` or ``+json``) as the input, so
  ``{"_method": "DELETE"}`` is a DELETE.

So with ``method_override_in_body`` (on) every POST with a body must also be allowed under every
other method, and query keys are read as PHP names them. The price, seen in ``forms-*``: a
public rule limited to POST (``/forms/``) no longer lets an anonymous POST *with a body* in
while another method there needs admins.
"""

from __future__ import annotations

from tests.request_side.corpus import (
    BAD,
    EVERY,
    FORBIDDEN,
    LOGIN,
    Header,
    Registry,
    http,
    served,
)

R = Registry("overrides", EVERY)
FORM = b"application/x-www-form-urlencoded"
MULTIPART = (
    b'--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n'
    b'--b\r\nContent-Disposition: form-data; name="title"\r\n\r\nx\r\n--b--\r\n'
)


def ct(value: bytes) -> Header:
    return (b"Content-Type", value)


# ---------------------------------------------------------------- _method in a POST's body
for slug, headers, body in [
    ("no-content-type", (), b"_method=DELETE"),
    ("empty-content-type", (ct(b""),), b"_method=DELETE"),
    ("form", (ct(FORM),), b"_method=DELETE"),
    ("form-charset", (ct(FORM + b"; charset=utf-8"),), b"_method=DELETE"),
    ("form-upper-case-type", (ct(FORM.upper()),), b"_method=DELETE"),
    ("form-comma-text", (ct(FORM + b", text/plain"),), b"_method=DELETE"),
    ("form-space-text", (ct(FORM + b" text/plain"),), b"_method=DELETE"),
    ("form-tab-before-type", (ct(b"\t" + FORM),), b"_method=DELETE"),
    ("multipart", (ct(b"multipart/form-data; boundary=b"),), MULTIPART),
    ("multipart-mixed", (ct(b"multipart/mixed; boundary=b"),), MULTIPART),
    ("json", (ct(b"application/json"),), b'{"_method": "DELETE"}'),
    ("json-vendor-type", (ct(b"application/vnd.api+json"),), b'{"_method": "DELETE"}'),
    ("json-text-type", (ct(b"text/json"),), b'{"_method": "DELETE"}'),
    ("json-no-content-type", (), b'{"_method": "DELETE"}'),
    ("text-plain", (ct(b"text/plain"),), b"_method=DELETE"),
    ("lower-case-value", (), b"_method=delete"),
    ("duplicate-key-delete-last", (), b"_method=GET&_method=DELETE"),
    ("duplicate-key-delete-first", (), b"_method=DELETE&_method=GET"),
    ("array-key", (), b"_method[]=DELETE"),
    ("encoded-key", (), b"%5Fmethod=DELETE"),
    ("after-other-fields", (), b"title=x&body=y&_method=DELETE"),
]:
    R.add(
        f"body-{slug}",
        f"POST /docs/ (DELETE needs admins) with {headers} and {body[:30]!r}",
        http("POST", "/docs/handbook", *headers, body=body),
        expect=FORBIDDEN,
    )
R.add(
    "body-chunked",
    "a chunked POST body _method=DELETE without a Content-Type",
    http(
        "POST",
        "/docs/handbook",
        (b"Transfer-Encoding", b"chunked"),
        body=b"e\r\n_method=DELETE\r\n0\r\n\r\n",
    ),
    expect=FORBIDDEN,
)
R.add(
    "body-anon",
    "an anonymous POST /docs/ with _method=DELETE",
    http("POST", "/docs/handbook", body=b"_method=DELETE"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "body-admin-allowed",
    "an admin's POST /docs/ with _method=DELETE and no Content-Type",
    http("POST", "/docs/handbook", body=b"_method=DELETE"),
    who="admins",
    expect=served("docs"),
)
R.add(
    "body-editor-api-json",
    "an editor's JSON POST to /api/ (every method there is the editors')",
    http("POST", "/api/items", ct(b"application/json"), body=b'{"title": "x"}'),
    who="editors",
    expect=served("api"),
)
R.add(
    "body-page",
    "a POST with a body where no rule names a method",
    http("POST", "/page", ct(FORM), body=b"_method=DELETE"),
    expect=served("page"),
)

# ---------------------------------------------------------------- a method no rule names
for slug, value in [("put", b"PUT"), ("link", b"LINK"), ("purge", b"PURGE"), ("word", b"FOO")]:
    R.add(
        f"forms-body-{slug}",
        f"POST /forms/ (public for POST only) with _method={value.decode()}",
        http("POST", "/forms/contact", ct(FORM), body=b"_method=" + value),
        expect=FORBIDDEN,
    )
R.add(
    "forms-body-put-anon",
    "an anonymous POST /forms/ with _method=PUT and no Content-Type",
    http("POST", "/forms/contact", body=b"_method=PUT"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "forms-post-without-body-anon",
    "an anonymous POST /forms/ without a body: public",
    http("POST", "/forms/contact", (b"Content-Length", b"0")),
    who="anon",
    expect=served("forms"),
)
R.add(
    "forms-post-with-body-anon",
    "an anonymous POST /forms/ with a plain form body: the price (every method's rule)",
    http("POST", "/forms/contact", ct(FORM), body=b"name=x"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "forms-body-admin",
    "an admin's POST /forms/ with _method=PUT",
    http("POST", "/forms/contact", ct(FORM), body=b"_method=PUT"),
    who="admins",
    expect=served("forms"),
)

# ---------------------------------------------------------------- query keys PHP reads as _method
for slug, query in [
    ("dot", ".method=DELETE"),
    ("encoded-dot", "%2Emethod=DELETE"),
    ("leading-plus", "+_method=DELETE"),
    ("leading-space-dot", "%20.method=DELETE"),
    ("nul-suffix", "_method%00x=DELETE"),
    ("array", "_method[]=DELETE"),
    ("array-index", "_method[0]=DELETE"),
    ("dot-array", ".method[]=DELETE"),
    ("encoded-brackets", "_method%5B%5D=DELETE"),
    ("upper-case-name", "_METHOD=DELETE"),
    ("dot-after-others", "a=1&b=2&.method=DELETE"),
]:
    R.add(
        f"query-{slug}",
        f"POST /docs/handbook?{query}",
        http("POST", f"/docs/handbook?{query}"),
        expect=FORBIDDEN,
    )
R.add(
    "query-dot-on-get",
    "GET /docs/handbook?.method=DELETE",
    http("GET", "/docs/handbook?.method=DELETE"),
    expect=FORBIDDEN,
)
R.add(
    "query-dot-anon",
    "an anonymous POST /docs/handbook?.method=DELETE",
    http("POST", "/docs/handbook?.method=DELETE"),
    who="anon",
    expect=LOGIN,
)
R.add(
    "query-dot-admin-allowed",
    "an admin's POST /docs/handbook?.method=DELETE",
    http("POST", "/docs/handbook?.method=DELETE"),
    who="admins",
    expect=served("docs"),
)
R.add(
    "query-dot-junk-value",
    "POST /docs/handbook?.method=DEL+ETE: not a method",
    http("POST", "/docs/handbook?.method=DEL+ETE"),
    expect=BAD,
)
for slug, query in [
    ("unclosed-bracket", "_method[=DELETE"),
    ("trailing-dot", "_method.=DELETE"),
    ("semicolon-separated", "a=1;_method=DELETE"),
    ("double-encoded", "%255Fmethod=DELETE"),
    ("other-name", "method=DELETE"),
]:
    R.add(
        f"query-not-{slug}",
        f"POST /docs/handbook?{query}: no framework reads _method there",
        http("POST", f"/docs/handbook?{query}"),
        expect=served("docs"),
    )
