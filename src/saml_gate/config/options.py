# Generated from the settings' declarations by `python -m saml_gate.config.generate`: do not
# edit; tests/test_settings_declarations.py checks that it is current.
"""The keyword options of ``SamlGate(...)`` and ``build_proxy_app(...)`` as types, one per
setting, as callers may give it (a single string where the settings keep a tuple, rules in
their text form, a Redis client for ``store``...).

Typing ``SamlGate.__init__`` with ``**options: Unpack[GateOptions]`` lets type checkers check
each keyword, through Starlette's ``add_middleware`` too. ``None`` means "not given": the
``SAML_GATE_*`` variable or the default applies. Each key's docstring is its setting's help.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from redis.asyncio import Redis

    from saml_gate.config.value_types import (
        ErrorPageHook,
        SameSite,
        StoreOutage,
        Strings,
        VerifyIsolation,
    )
    from saml_gate.ops.events import Hook
    from saml_gate.policy import Rule
    from saml_gate.store.base import Store


class GateOptions(TypedDict, total=False):
    """Every setting of the gate, as a keyword argument of ``SamlGate``."""

    # Service provider: the gate's URLs, entity ID and keys
    base_url: str | None
    """public URL (https://acme.ngrok.app, plus the path the app is mounted at, if any:
    https://acme.ngrok.app/app); every SAML URL derives from it
    """
    prefix: str | None
    """where the gate's endpoints live"""
    entity_id: str | None
    """SP entity ID (Okta: Audience URI)"""
    sp_key: str | None
    """SP private key, PEM text or file: signs requests, decrypts assertions"""
    sp_cert: str | None
    """SP certificate, PEM text or file"""
    state_dir: str | None
    """the SP key pair when sp_key is not set (saml-gate keygen writes it there too), development
    IdP keys and the IdP metadata cache; one per user, whatever the current directory
    """
    name_id_format: str | None
    """NameID format asked for and accepted (unspecified is accepted too)"""
    force_authn: bool | None
    """ask the IdP to authenticate again at every sign-in"""
    sign_authn_requests: bool | None
    """sign AuthnRequests (RSA-SHA256); an IdP that has the SP certificate (uploaded for Single
    Logout) may demand it
    """

    # Sessions: the signing secret and lifetimes
    secret_key: str | bytes | Iterable[str | bytes] | None
    """session signing secret(s), ≥ 32 characters; a list rotates: the first signs, all verify"""
    maximum_duration: float | None
    """absolute session lifetime (also capped by the IdP's SessionNotOnOrAfter)"""
    inactivity_timeout: float | None
    """idle timeout in seconds"""
    login_timeout: float | None
    """how long a started sign-in stays valid"""

    # Identity provider
    idp_metadata: str | None
    """IdP metadata: URL (Okta: Metadata URL), file path or the XML itself"""
    idp_entity_id: str | None
    """which IdP, when the metadata lists several"""
    dev_idp: bool | None
    """serve and trust the embedded development IdP (loopback only)"""
    idp_logout: bool | None
    """sign-out continues to the IdP (SAML Single Logout) when its metadata has an SLO endpoint"""

    # Access policy: who may reach which path
    authorized_groups: Strings | None
    """only members of one of these groups get in (403 otherwise)"""
    access_rules: Rule | str | Iterable[Rule | str] | None
    """per-path rules, first match wins (see Access policy); the variable separates rules with ;"""
    options_passthrough: bool | None
    """pass every OPTIONS request (CORS preflight) to the app without sign-in, as ngrok's option"""
    method_override_in_body: bool | None
    """the app may honour _method in a POST body (Rails, Sinatra, Laravel, Symfony, Spring), which
    the gate does not read: every POST with a body, whatever its type, must then also be allowed
    under every other method (set false if the app does not)
    """
    allow_path_parameters: bool | None
    """accept ; path parameters (/a;jsessionid=1/b), matching rules on the path without them as
    servlet containers serve it (refused with 400 otherwise)
    """
    public_paths: Strings | None
    """served without sign-in: /static/ (prefix: trailing slash) or /healthz (exact)"""
    api_paths: Strings | None
    """routes for programs: a request there without a session always gets 401 JSON with the
    login_url, never a redirect to sign in, whatever its Accept (/api/, prefix with a trailing
    slash, or an exact path)
    """
    config_file: str | None
    """a saml-gate.toml of settings and [[rules]] tables (see The configuration file); keywords,
    flags and variables win over it; its access policy is reloaded when it changes
    """

    # Cookies
    cookie_prefix: str | None
    """cookie names start with it"""
    cookie_secure: bool | None
    """the Secure cookie attribute"""
    cookie_samesite: SameSite | None
    """SameSite of the session cookie (lax survives the IdP's redirect back)"""
    cookie_domain: str | None
    """Domain attribute of the cookies: example.com lets one sign-in cover its subdomains
    (forward-auth, allowed_hosts)
    """

    # Verifying Responses: signatures, attributes
    allow_idp_initiated: bool | None
    """accept unsolicited Responses (Okta dashboard tiles)"""
    groups_attribute: str | None
    """attribute holding the groups"""
    email_attribute: str | None
    """attribute holding the email (else an email-shaped NameID)"""
    name_attribute: str | None
    """attribute holding the display name"""
    want_response_signed: bool | None
    """require the Response's own signature"""
    want_assertions_signed: bool | None
    """require the Assertion's own signature (a valid signature covering the assertion is always
    required)
    """
    signature_algorithms: Strings | None
    """accepted signature algorithms"""
    allow_sha1: bool | None
    """also accept RSA-SHA1 / SHA-1 (weak; only for IdPs that cannot do better)"""
    check_subject_address: bool | None
    """refuse a Response whose bearer SubjectConfirmationData names an Address other than the
    client's (as trusted_proxies resolve it); off because tunnels, proxies, NAT and IPv4/IPv6
    paths make the IdP and the gate see different addresses (Shibboleth ships with it off too)
    """

    # What upstreams are told: identity headers, the identity JWT, other hosts
    user_header: str | None
    """the header telling the upstream the person's NameID (proxy mode and forward-auth; empty
    turns it off)
    """
    email_header: str | None
    """the header telling the upstream the person's email (proxy mode and forward-auth; empty turns
    it off)
    """
    groups_header: str | None
    """the header telling the upstream the person's groups, comma-separated (proxy mode and
    forward-auth; empty turns it off)
    """
    allowed_hosts: Strings | None
    """hosts a sign-in may return to besides base_url's (/saml/login?return_to= an absolute URL;
    forward-auth): app.example.com, app.example.com:8443, or *.example.com (its subdomains);
    with cookie_domain one sign-in covers them
    """
    forward_auth: bool | None
    """serve /saml/auth, the forward-auth endpoint nginx, Caddy and Traefik ask about each request
    (on with saml-gate forward-auth); off, it answers 404, so that a tunnel's loopback agent
    cannot make every internet client a trusted proxy
    """
    jwt_header: str | None
    """the request header carrying the signed identity JWT to the app or upstream (middleware,
    proxy, forward-auth); empty turns it off
    """
    jwt_audience: str | None
    """the identity JWT's aud claim"""
    jwt_keys: Strings | None
    """private keys (PEM text or files; EC P-256 signs ES256, RSA signs RS256) for the identity
    JWT: the first signs, all are published at /saml/jwks.json (rotation)
    """
    jwt_lifetime: float | None
    """seconds an identity JWT is valid (each session's is re-signed near its expiry)"""

    # Continuous authorization: Universal Logout, re-assertion
    reassert_interval: float | None
    """ask the IdP again, without a prompt (IsPassive), on the first page load this long after it
    last vouched for the person: new groups, attributes and expiry, or the session ends (see
    Continuous authorization)
    """
    universal_logout_issuer: str | None
    """the Okta org URL (https://acme.okta.com) whose signed Universal Logout requests
    {prefix}/global-token-revocation accepts; unset, that endpoint answers 404
    """
    universal_logout_keys: str | None
    """the org's key set that signs those requests: a URL (fetched and refreshed like IdP
    metadata), a file or the JSON itself
    """
    universal_logout_app_id: str | None
    """when set, a Universal Logout request must name this app (its JWT's sub: the Okta app's ID,
    0oa..., as in its metadata URL)
    """

    # Machine access: IdP access tokens
    access_token_issuer: str | None
    """the authorization server whose OAuth access tokens a rule with accept=token takes in
    Authorization: Bearer (its iss: Okta's https://acme.okta.com/oauth2/default; see Machine
    access)
    """
    access_token_audiences: Strings | None
    """the aud values accepted (Okta: the authorization server's Audience); required with
    access_token_issuer
    """
    access_token_keys: str | None
    """the issuer's key set: a URL (fetched and refreshed like IdP metadata, refetched on an
    unknown kid), a file or the JSON itself
    """
    access_token_algorithms: Strings | None
    """the JWS algorithms accepted (asymmetric only: RS, PS, ES; never none nor HMAC)"""
    access_token_groups_claim: str | None
    """the claim whose values (verbatim) are the service's groups for the access rules"""
    access_token_scope_groups: Strings | None
    """scopes that also count as groups, scope=group (deploy:write=deployers)"""

    # Operating: proxies, error details, hooks, metrics, status
    trusted_proxies: Strings | None
    """proxies (addresses or networks, * for any) whose X-Forwarded-For / Forwarded the gate
    believes about the client address (logs, proxy mode, check_subject_address); error details,
    status and metrics are for loopback clients not behind any proxy, whatever this says
    """
    debug: bool | None
    """show error details to every client"""
    on_event: Hook | Iterable[Hook] | None
    """callables (sync or async) given every auth event; a failing hook is logged, never breaks a
    request
    """
    on_error: ErrorPageHook | None
    """on_error(connection, error) for branded error pages: given the request (a Starlette
    HTTPConnection) and the GateError (.code, .status, .info.title), it returns a Starlette
    Response, or None for the gate's own page; called for every error page and JSON error body,
    not for the sign-in redirect, the 401 to an API call or a refused WebSocket
    """
    metrics_path: str | None
    """serve Prometheus metrics at this path (needs the metrics extra)"""
    metrics_public: bool | None
    """let any client scrape metrics_path (default: loopback clients not behind a proxy)"""
    metrics_registry: Any
    """a prometheus_client.CollectorRegistry to register the gate's metrics into"""
    status_group: str | None
    """members of this group may read /saml/status from anywhere"""

    # Clock
    clock_skew: float | None
    """seconds of tolerance on every time check"""
    clock: Callable[[], float] | None
    """the clock (a test hook)"""

    # The shared store: replay cache, sign-outs, large identities
    store: str | Store | Redis | None
    """shared state: memory (one process) or a Redis URL (needs the redis extra):
    redis://host:6379/0, rediss:// (TLS), unix://, redis+cluster://h:p,h:p,
    redis+sentinel://h:p/service (see Operating); SamlGate(store=...) also takes a
    redis.asyncio.Redis client or a saml_gate.Store
    """
    store_prefix: str | None
    """prefix of every Redis key, so several gates can share one Redis"""
    store_timeout: float | None
    """seconds a store call may take (connect, reply, pool wait) before it counts as failed"""
    store_outage: StoreOutage | None
    """while the store is unreachable and this process cannot check revocations: refuse signed-in
    requests with 503, or serve valid session cookies (sign-outs made on other gates during the
    outage are then not enforced; see Security model); a sign-out this process knows is enforced
    either way, new sign-ins get 503 either way
    """

    # Fetching the IdP metadata from a URL (advanced)
    metadata_refresh_interval: float | None
    """seconds between fetches of metadata from a URL (shortened by cacheDuration/validUntil)"""
    metadata_timeout: float | None
    """seconds per metadata fetch"""
    metadata_max_bytes: int | None
    """size cap on fetched metadata"""

    # Limits on a posted Response's XML (advanced)
    max_response_bytes: int | None
    """size cap on a posted Response"""
    max_xml_depth: int | None
    """deepest element nesting accepted in a Response"""
    max_xml_elements: int | None
    """most XML elements accepted in a Response"""
    max_xml_attributes: int | None
    """most attributes on one XML element of a Response, and most namespace declarations in scope
    at one element (real IdPs use 5 or fewer); the whole Response may hold max_xml_elements
    attributes and as many namespace declarations
    """

    # Performance: where Responses are verified, garbage collection (advanced)
    verify_isolation: VerifyIsolation | None
    """where Responses are verified and AuthnRequests built: process (child processes started with
    the gate, so the event loop never waits for the GIL behind XML work and a crash on hostile
    input ends a child, not your app) or thread (threads of the app's process, for platforms
    without child processes; the gate also falls back to it, with a warning, when it cannot
    start one)
    """
    verify_concurrency: int | None
    """Responses verified at once: child processes with process, worker threads with thread (there
    the work is mostly GIL-bound: more threads add little throughput and slow the event loop).
    0: one child per CPU core this process may use with process, at most 8 (so a sign-in storm
    uses every core), one thread with thread; with --workers N, each server process starts its
    own
    """
    gc_freeze: bool | None
    """call gc.freeze() once when the gate starts serving (and in each verification child after its
    first job): the tens of thousands of objects the imports and start-up leave (the XML schemas
    in a child) are then never walked by the cyclic garbage collector, whose full passes
    otherwise stall the event loop 20-60 ms during a sign-in storm. Turn it on when p99 latency
    under sign-in load matters; it freezes the app's start-up objects too (never collected as
    cycles, still freed by reference counting), so it is off by default
    """


class ProxyOptions(GateOptions, total=False):
    """The keyword options of ``build_proxy_app``: the gate's and the reverse proxy's."""

    # Reverse proxy (saml-gate proxy, build_proxy_app)
    preserve_host: bool | None
    """send the browser's Host to the upstream (HTTP only) instead of the upstream's"""
    connect_timeout: float | None
    """seconds to connect to the upstream (HTTP and WebSocket)"""
    upstream_timeout: float | None
    """seconds to wait for the upstream's next bytes; 0 waits forever (long polls, server-sent
    events)
    """
