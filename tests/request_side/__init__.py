"""The request-side adversarial suite: does the gate apply the rule of what the app serves?

The gate decides from its own reading of a request (method, path, headers, cookies); the app
behind it acts on *its* reading. Every disagreement between the two is a potential bypass, so
this suite sends hostile requests -- as raw bytes on fresh sockets, since a client library
would normalise most of them away -- through real uvicorn servers to targets behind the
same policy (:mod:`.oracle`):

1. middleware mode over a Starlette app (with a ``Mount("/sub", ...)`` sub-app, path params
   and WebSocket routes), also under uvicorn's ``root_path``;
2. middleware mode over Django's ``get_asgi_application()`` (its own process), also under
   ``root_path`` (Django's SCRIPT_NAME);
3. proxy mode (``build_proxy_app``) in front of a servlet-style upstream that reads the
   request as Tomcat / Jetty / Spring do: ``;`` parameters dropped, percent-decoding, ``\\`` as
   ``/``, dot segments resolved, suffixes matched as Spring MVC did, method upper-cased and
   overridden by headers and ``_method``, the path replaced by ``X-Original-URL`` (as Symfony
   does);
4. proxy mode in front of real frameworks (:mod:`.real_upstreams`), which report what *they*
   ran: ``sinatra`` (Rack 2.2's ``Rack::MethodOverride``) and ``rails`` (ActionDispatch 6.1's
   router, routes with ``(.:format)``) on Puma, ``symfony`` (HttpFoundation 5.4, parameter
   override on) and ``laravel`` (``Illuminate\\Http\\Request::capture()``) on PHP 8.2's
   built-in server. The classes about what an upstream reads (methods, overrides, paths,
   formats) run against them too.

**The oracle.** Every app reports which resource it served, at which site path, with which
method (``X-Served-*`` headers; the first WebSocket frame). For each answer the suite computes,
with its own reference function over *that served resource* (not the gate's code), the rule
that applies, and checks it against what the requester really holds (``Case.who``: the
principals whose valid sessions the request carries). A 2xx from the app for a resource whose
rule the requester does not satisfy is a **bypass**. Also, on every answer: no 5xx and no
error or traceback in any server's log; in proxy mode the upstream sees only the gate's
identity headers (never the client's, under any spelling) and never the gate's cookies.

**The expectations.** Each case also says what the gate must answer once the request-side fixes
are in (``Case.expect``): methods that are not upper-case tokens and paths with ``;``, a
percent-encoded ``/ \\ . ; %`` or NUL, or dot segments are refused (400); method overrides
(headers, ``_method`` in the query as PHP names keys) are checked against the rules like the
real method, and a POST with a body against every method's; a path with a format suffix meets
the rule of the path without it too; rules match the path without ``root_path``; a session
minted by another gate configuration counts for nothing, two session cookies are refused;
``/saml/status`` is 403 to anything that looks remote. Benign controls must be served.

Sessions come from real sign-ins over HTTP through each target (the test IdP signs the
Response). The servers start on first use and stop after the test module (``conftest.py``).
"""
