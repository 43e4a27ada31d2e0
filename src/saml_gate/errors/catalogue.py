"""The catalogue: every stable error code with its HTTP status, title and fix hint.

The code and the title are safe to show to anyone; the hint tells the operator which setting
or IdP field to change (``{name}`` fields are filled with public values of the deployment, or
of the refusal: the groups an access rule asks for). A hint names the SAML field as any IdP
knows it first, and Okta's place for it second, in parentheses starting with "Okta:".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from saml_gate.errors.codes import ErrorCode


@dataclass(frozen=True)
class ErrorInfo:
    status: int
    title: str
    hint: str
    defaults: Mapping[str, str] = field(default_factory=dict)
    """Values for the hint's own ``{name}`` fields when the refusal gives none."""


ERRORS: Final[dict[ErrorCode, ErrorInfo]] = {
    # Transport and encoding
    "missing_saml_response": ErrorInfo(
        400,
        "No SAMLResponse in the request",
        "The ACS expects an HTTP-POST form with a SAMLResponse field, sent by the IdP.",
    ),
    "response_too_large": ErrorInfo(
        413,
        "The SAML Response is too large",
        "Raise max_response_bytes only if your IdP really sends responses this large.",
    ),
    "response_too_complex": ErrorInfo(
        413,
        "The SAML Response is too complex",
        "It nests or repeats XML elements, attributes or namespace declarations beyond"
        " max_xml_depth / max_xml_elements / max_xml_attributes; raise them only if your IdP"
        " really sends such responses.",
    ),
    "bad_method": ErrorInfo(
        400,
        "The request method is not accepted",
        "Methods must be upper-case tokens (GET, POST, PROPFIND), and so must method overrides"
        " (X-HTTP-Method-Override, _method): the app could read another spelling as a method"
        " the access rules do not expect.",
    ),
    "bad_path": ErrorInfo(
        400,
        "The request path is not accepted",
        "Paths with ';' parameters or a percent-encoded '/', '\\', '.', ';', '%' or NUL are"
        " refused: servers and frameworks read them differently. Set allow_path_parameters if"
        " the app really uses ';' parameters (e.g. jsessionid).",
    ),
    "bad_host": ErrorInfo(
        400,
        "The request's host is not accepted",
        "A request names one host, plainly: one Host header (or original URL) with an ASCII DNS"
        " name (an internationalised name in its xn-- form), an IPv4 or a bracketed IPv6 address,"
        " an optional port, and no trailing dot; anything else could be another site to the"
        " app or the proxy.",
    ),
    "unknown_host": ErrorInfo(
        421,
        "This gate does not serve this host",
        "Add {host} to allowed_hosts (or *.its-parent-domain) if the gate protects an app there;"
        " behind a proxy that rewrites Host, pass the browser's (nginx: proxy_set_header Host"
        " $host).",
        {"host": "the host"},
    ),
    "malformed_response": ErrorInfo(
        400,
        "The SAML Response could not be decoded",
        "The SAMLResponse must be base64-encoded XML posted by the IdP (HTTP-POST binding).",
    ),
    "forbidden_xml": ErrorInfo(
        400,
        "The SAML Response contains forbidden XML constructs",
        "DOCTYPE, entities, processing instructions and comments are refused; real IdPs never"
        " send them.",
    ),
    "schema_invalid": ErrorInfo(
        400,
        "The SAML Response does not follow the SAML 2.0 schema",
        "Check that the IdP is a SAML 2.0 IdP and that nothing rewrites the message in transit.",
    ),
    "not_a_response": ErrorInfo(
        400,
        "The message is not a SAML 2.0 Response",
        "Only samlp:Response messages are accepted at the ACS.",
    ),
    # Signatures and encryption
    "signature_missing": ErrorInfo(
        400,
        "The SAML Response is not signed as required",
        "Have the IdP sign the Response and the Assertion (Okta: SAML Settings → Show Advanced"
        " Settings, 'Response' and 'Assertion Signature' Signed), or adjust"
        " want_response_signed / want_assertions_signed.",
    ),
    "signature_invalid": ErrorInfo(
        400,
        "The SAML signature is not valid",
        "The message was signed with a key that is not in the IdP metadata, or was altered."
        " If the IdP rotated its signing certificate, download its metadata again.",
    ),
    "unknown_signing_certificate": ErrorInfo(
        400,
        "The Response is signed with a certificate this gate does not know",
        "The IdP signs with a certificate that is not in the metadata the gate loaded (it"
        " rotated its signing key, or the metadata is another app's). {signing_key_fix}",
    ),
    "signature_structure": ErrorInfo(
        400,
        "The SAML signature is not of the accepted shape",
        "Exactly one Reference to the signed element, enveloped-signature and exclusive c14n"
        " transforms only, and no ds:Object are accepted.",
    ),
    "algorithm_refused": ErrorInfo(
        400,
        "The message uses an algorithm that is not allowed",
        "Configure the IdP to sign with RSA-SHA256 (Okta: its default) and to encrypt with AES"
        " and RSA-OAEP; SHA-1 is refused unless allow_sha1 is set.",
    ),
    "decryption_failed": ErrorInfo(
        400,
        "The encrypted assertion could not be decrypted",
        "Upload this SP's certificate (see /saml/metadata) as the encryption certificate in the"
        " IdP, or turn assertion encryption off there.",
    ),
    # Structure
    "assertion_count": ErrorInfo(
        400,
        "The Response must contain exactly one assertion",
        "The gate accepts exactly one Assertion or EncryptedAssertion, as a direct child.",
    ),
    "duplicate_id": ErrorInfo(
        400,
        "The SAML Response contains duplicate IDs",
        "Identifiers must be unique within a message; this is a sign of tampering.",
    ),
    "duplicate_attribute": ErrorInfo(
        400,
        "The assertion names an attribute more than once",
        "Each attribute must appear once, with all its values: check the IdP's attribute"
        " mappings for two that share a name (Okta: an attribute statement and a group attribute"
        " statement with the same name).",
    ),
    "idp_status": ErrorInfo(
        403,
        "The IdP did not sign you in",
        "The IdP answered with an error status: check there that this person may use the"
        " application (assigned to it, and meeting its sign-on policy) (Okta: the Assignments"
        " tab and the app's sign-on policy).",
    ),
    "idp_denied": ErrorInfo(
        403,
        "The IdP refused to sign you in to this application",
        "At the IdP, assign this person, or a group they belong to, to the application, and"
        " check its sign-on policy (Okta: the Assignments tab).",
    ),
    # Semantics
    "wrong_issuer": ErrorInfo(
        400,
        "The Response comes from an unexpected IdP",
        "The Issuer must equal the entityID of the configured IdP metadata; load the metadata"
        " of the IdP application that signs the users in.",
    ),
    "wrong_destination": ErrorInfo(
        400,
        "The Response is addressed to another URL",
        "Set the IdP's Assertion Consumer Service (ACS) URL for this application, also its"
        " Recipient and Destination, to {acs_url} (Okta: General → SAML Settings → Edit,"
        " 'Single sign-on URL', tick 'Use this for Recipient URL and Destination URL');"
        " base_url must be the public URL the browser uses.",
    ),
    "wrong_recipient": ErrorInfo(
        400,
        "The assertion is addressed to another recipient",
        "Set the IdP's Assertion Consumer Service (ACS) URL, which is also the Recipient, to"
        " {acs_url} (Okta: General → SAML Settings → Edit, 'Single sign-on URL' and Recipient"
        " URL).",
    ),
    "wrong_acs_url": ErrorInfo(
        400,
        "The sign-in response was sent to the wrong address",
        "The IdP posted its SAMLResponse here, but this gate's Assertion Consumer Service is"
        " {acs_url}: set the IdP's ACS URL for this application to it (Okta: General → SAML"
        " Settings → Edit, 'Single sign-on URL', tick 'Use this for Recipient URL and"
        " Destination URL').",
    ),
    "wrong_audience": ErrorInfo(
        400,
        "The assertion is meant for another service provider",
        "Set the SP entity ID (the Audience) of this application at the IdP to {entity_id}"
        " (Okta: General → SAML Settings → Edit, 'Audience URI (SP Entity ID)').",
    ),
    "audience_placeholder": ErrorInfo(
        400,
        "The IdP still sends the placeholder Audience",
        "The IdP's application still has the temporary value from its set-up: set its SP"
        " entity ID (Audience) to {entity_id} and its ACS URL to {acs_url} ('saml-gate setup'"
        " prints every value) (Okta: General → SAML Settings → Edit, 'Audience URI (SP Entity"
        " ID)' and 'Single sign-on URL').",
    ),
    "not_yet_valid": ErrorInfo(
        400,
        "The assertion is not valid yet",
        "The clocks of the IdP and this server disagree; synchronise this server's clock (NTP)"
        " or raise clock_skew.",
    ),
    "expired": ErrorInfo(
        400,
        "The assertion has expired",
        "Sign in again. If this repeats, the clocks disagree: synchronise this server's clock"
        " (NTP) or raise clock_skew.",
    ),
    "bad_subject": ErrorInfo(
        400,
        "The assertion's subject is not usable",
        "The assertion needs a NameID and a bearer SubjectConfirmation for this ACS.",
    ),
    "identity_not_verbatim": ErrorInfo(
        400,
        "The IdP sent a user name or group with hidden characters",
        "The IdP sends a NameID, or a value of the groups, email or name attribute, with"
        " leading or trailing whitespace or with control or invisible formatting characters"
        " (zero-width space or joiner, BOM, bidi controls). The gate reads a signed identity"
        " verbatim and never trims it, so that two accounts cannot become one: fix that user's"
        " account or that group's name (or the attribute's expression) at the IdP.",
    ),
    "subject_address_mismatch": ErrorInfo(
        400,
        "The sign-in was made from another network address",
        "The IdP bound the assertion to the address it saw the browser at, and this gate sees"
        " the client at another one (check_subject_address is on). Behind a proxy or tunnel,"
        " list it in trusted_proxies; where the IdP and the gate see different addresses by"
        " design (IPv4 and IPv6, NAT, VPN), turn check_subject_address off.",
    ),
    "name_id_format": ErrorInfo(
        400,
        "The NameID format is not the one configured",
        "Have the IdP send the NameID in the {name_id_format} format, with the email as its"
        " value, or change name_id_format (Okta: General → SAML Settings → Edit, 'Name ID"
        " format' {name_id_format} and 'Application username' Email).",
    ),
    "bad_conditions": ErrorInfo(
        400,
        "The assertion's conditions are missing or not understood",
        "The assertion must carry Conditions with an AudienceRestriction naming this SP.",
    ),
    "bad_authn_statement": ErrorInfo(
        400,
        "The assertion has no usable authentication statement",
        "The assertion must carry exactly one AuthnStatement.",
    ),
    "replayed": ErrorInfo(
        400,
        "This sign-in response was already used",
        "Each Response can be used once. Start again from the application's page.",
    ),
    "unsolicited": ErrorInfo(
        400,
        "Unsolicited (IdP-initiated) sign-in is disabled",
        "Start from the application's URL, or set allow_idp_initiated if people start at the"
        " IdP (Okta: a dashboard tile).",
    ),
    "unknown_request": ErrorInfo(
        400,
        "The Response answers a sign-in this browser did not start",
        "Start again from the application's page in the same browser. Cookies must be enabled.",
    ),
    "base_url_mismatch": ErrorInfo(
        400,
        "This address is not the one the gate is configured for",
        "The browser used a different address than base_url ({base_url}). Set base_url "
        "(SAML_GATE_BASE_URL) to the public URL people open, e.g. the ngrok URL, and "
        "update the IdP's application with the values 'saml-gate setup' prints.",
    ),
    "bad_relay_state": ErrorInfo(
        400,
        "The RelayState is not valid",
        "The RelayState must be the token the gate issued, or a same-site relative path; a"
        " return_to, a relative path or a URL on a host of allowed_hosts.",
    ),
    "not_a_navigation": ErrorInfo(
        403,
        "A sign-in starts only from a page the browser opens",
        "Images, scripts, frames, fetch/XHR calls and prefetches cannot start a sign-in (each"
        " would set a pending-login cookie). Send the user to the page, or to {login_url}, with a"
        " link or window.location.",
    ),
    # Sessions, requests and access
    "not_authenticated": ErrorInfo(
        401, "Sign-in required", "Open the login URL in a browser to sign in through the IdP."
    ),
    "reassertion_required": ErrorInfo(
        401,
        "The IdP must confirm your session",
        "reassert_interval has passed since the IdP last vouched for you: open {login_url} (or"
        " reload the page) in the browser, which passes through the IdP without a prompt and"
        " comes back. Until then scripts get this answer and WebSockets are refused.",
    ),
    "duplicate_session": ErrorInfo(
        401,
        "More than one session cookie",
        "Your browser sent two different session cookies for this page (another site under the"
        " same domain may have set one), so the gate does not pick either. This answer deleted"
        " them: sign in again. If this page comes back, delete this site's cookies in the"
        " browser, and tell the operator (SECURITY.md, session cookies).",
    ),
    "forbidden": ErrorInfo(
        403,
        "You are signed in but not allowed here",
        "{access_needed} Ask an administrator to give you access at the IdP (group names are"
        " case-sensitive: yours, as the IdP sent them, are listed), then sign in again.",
        {"access_needed": "Your groups or attributes do not meet this page's access rule."},
    ),
    "step_up_required": ErrorInfo(
        401,
        "Please sign in again",
        "This page needs a recent or stronger sign-in; open the login URL in a browser.",
    ),
    "step_up_failed": ErrorInfo(
        403,
        "The sign-in was not recent or strong enough for this page",
        "The IdP did not authenticate again (ForceAuthn) or used another authentication"
        " context than the access rule asks for (authn_contexts): check the application's"
        " sign-on policy at the IdP (e.g. require MFA) or relax max_authn_age / authn_contexts"
        " (Okta: the app's Sign On policy).",
    ),
    "upstream_unavailable": ErrorInfo(
        502,
        "The application is not reachable",
        "saml-gate could not connect to the upstream application; check that it runs and"
        " that --upstream points at it.",
    ),
    "upstream_protocol_error": ErrorInfo(
        502,
        "The application sent an invalid answer",
        "The upstream application broke HTTP (a malformed status line or header, conflicting"
        " lengths, or closing before its answer was complete); check its logs, and that"
        " --upstream points at an HTTP server on the right port (http:// vs https://).",
    ),
    "upstream_timeout": ErrorInfo(
        504,
        "The application did not answer in time",
        "The upstream application was too slow; raise upstream_timeout if that is expected.",
    ),
    "groups_missing": ErrorInfo(
        403,
        "The IdP sent no groups",
        "authorized_groups is set but the assertion has no '{groups_attribute}' attribute:"
        " have the IdP send the person's groups in an attribute named '{groups_attribute}'"
        " (Okta: General → SAML Settings → Edit → Group Attribute Statements, Name"
        " '{groups_attribute}', Filter 'Matches regex' '.*', or just the groups that matter).",
    ),
    # Logout and shared state
    "slo_signature": ErrorInfo(
        400,
        "The logout message is not signed by the IdP",
        "Logout requests and responses must carry a valid signature made with a key from the IdP"
        " metadata. If the IdP rotated its signing certificate, download its metadata again.",
    ),
    "slo_invalid": ErrorInfo(
        400,
        "The logout message is not valid",
        "It must come from the configured IdP, be recent and be addressed to {slo_url}: set"
        " the IdP's Single Logout URL for this application to {slo_url} and its SP issuer to"
        " {entity_id} (Okta: General → SAML Settings → Edit → Show Advanced Settings, 'Single"
        " Logout URL' and 'SP Issuer').",
    ),
    "slo_unexpected": ErrorInfo(
        400,
        "This logout answer matches no sign-out started in this browser",
        "You are signed out of this application already. If the IdP session is still open,"
        " sign out again from the application in the same browser.",
    ),
    "store_unavailable": ErrorInfo(
        503,
        "Sign-in is temporarily unavailable",
        "The gate cannot reach its shared store (the store setting, e.g. Redis). Sign-in"
        " resumes by itself once the store answers again; check that the Redis server runs"
        " and that store points at it.",
    ),
    "bad_request": ErrorInfo(400, "The request is not valid", "Check the URL and the method used."),
    "method_not_allowed": ErrorInfo(
        405, "Method not allowed", "Use the method this endpoint documents."
    ),
    "not_found": ErrorInfo(404, "Not found", "No such saml-gate endpoint."),
    "busy": ErrorInfo(503, "Too many sign-ins at once", "Try again in a moment."),
    "untrusted_proxy": ErrorInfo(
        403,
        "Only a trusted proxy may ask",
        "The forward-auth endpoint answers the reverse proxy's sub-requests only: list the"
        " proxy's address in trusted_proxies.",
    ),
    "bad_original_request": ErrorInfo(
        400,
        "The proxy did not describe the original request",
        "Send X-Original-URL and X-Original-Method (nginx), or X-Forwarded-Method, -Proto, -Host"
        " and -Uri (Traefik, Caddy), once each (see examples/forward_auth/).",
    ),
    "misconfigured": ErrorInfo(
        503,
        "saml-gate is not configured correctly",
        "The gate could not start: a setting is wrong. The server's log names it, and so does"
        " this page for a loopback client; fix it and restart. (Served where the server runs no"
        " lifespan, which would have stopped it at start-up.)",
    ),
    # Okta Universal Logout (Global Token Revocation): the IdP's server calls, never a browser
    "universal_logout_unauthenticated": ErrorInfo(
        401,
        "Universal Logout needs a signed request",
        "Send 'Authorization: Bearer <JWT>' signed by the IdP's organisation (Okta: the app's"
        " Authentication tab → Logout → Endpoint authentication: Signed JWT).",
    ),
    "universal_logout_token_invalid": ErrorInfo(
        401,
        "The Universal Logout token is not valid",
        "It must be a JWT of type global-token-revocation+jwt, signed with a key of"
        " universal_logout_keys (the org's, {universal_logout_keys}) with an asymmetric"
        " algorithm, carrying jti, iat and exp at most 10 minutes apart. Check that"
        " universal_logout_issuer is the org that sends it.",
    ),
    "universal_logout_wrong_issuer": ErrorInfo(
        401,
        "The Universal Logout token comes from another issuer",
        "Its iss must be universal_logout_issuer, the IdP organisation's URL (Okta: the org URL,"
        " or a custom domain's URL when the org signs with it).",
    ),
    "universal_logout_wrong_audience": ErrorInfo(
        401,
        "The Universal Logout token is meant for another endpoint",
        "Its aud must be this endpoint's URL, {universal_logout_url}: enter exactly that URL as"
        " the Global token revocation endpoint (Okta: the app's Authentication tab → Logout →"
        " Logout endpoint URL).",
    ),
    "universal_logout_expired": ErrorInfo(
        401,
        "The Universal Logout token is expired or not yet valid",
        "The IdP's tokens live minutes (Okta: 5 minutes): check this server's clock (clock_skew"
        " is the tolerance).",
    ),
    "universal_logout_replayed": ErrorInfo(
        401,
        "This Universal Logout token was used already",
        "Each request carries a new token (a new jti); a token is accepted once by every gate"
        " sharing the store.",
    ),
    "universal_logout_wrong_app": ErrorInfo(
        403,
        "The Universal Logout token names another application",
        "Its sub must be universal_logout_app_id, the app's ID at the IdP (Okta: 0oa..., as in"
        " its metadata URL); unset universal_logout_app_id to accept every app of the org.",
    ),
    "universal_logout_keys_unavailable": ErrorInfo(
        503,
        "The org's signing keys are unavailable",
        "The gate could not fetch universal_logout_keys ({universal_logout_keys}) to check the"
        " token; it tries again at the next request (at most once a minute). Check that the"
        " URL is the org's key set and that this server reaches it.",
    ),
    "universal_logout_bad_request": ErrorInfo(
        400,
        "The Universal Logout request is malformed",
        'POST application/json {{"sub_id": {{"format": "email", "email": ...}}}} or'
        ' {{"sub_id": {{"format": "iss_sub", "iss": <the IdP entity ID>, "sub":'
        " <the NameID>}}}} (Okta: Subject format Email or Issuer and Subject Identifier).",
    ),
    "universal_logout_failed": ErrorInfo(
        422,
        "The sessions could not be ended",
        "The gate could not reach its shared store to find and end the person's sessions;"
        " this gate enforces what it could, and writes it to the store once it answers. Send"
        " the request again when the store (Redis) is back.",
    ),
    # Machine access: bearer tokens (a gate service token, an IdP access token)
    "token_invalid": ErrorInfo(
        401,
        "The bearer token is not valid",
        "Send 'Authorization: Bearer <token>': a gate service token (sgt_..., from saml-gate"
        " tokens create) that exists, or an access token of access_token_issuer signed with one"
        " of its published keys (access_token_keys) by an allowed algorithm"
        " (access_token_algorithms; never none nor HMAC).",
    ),
    "token_expired": ErrorInfo(
        401,
        "The bearer token is expired or not yet valid",
        "Get a new token (saml-gate tokens create, or the issuer's token endpoint); check this"
        " server's clock (clock_skew is the tolerance).",
    ),
    "token_wrong_issuer": ErrorInfo(
        401,
        "The access token comes from an issuer this gate does not trust",
        "Its iss must be access_token_issuer (Okta: the authorization server's Issuer URI,"
        " Security → API → Authorization Servers).",
    ),
    "token_wrong_audience": ErrorInfo(
        401,
        "The access token is meant for another API",
        "Its aud must be one of access_token_audiences (Okta: the authorization server's"
        " Audience).",
    ),
    "token_revoked": ErrorInfo(
        401,
        "The service token was revoked",
        "Create a new one (saml-gate tokens create --name NAME) and give it to the client.",
    ),
    "token_in_query": ErrorInfo(
        400,
        "Tokens are not accepted in the URL",
        "Send the token in the Authorization header ('Authorization: Bearer <token>'), never"
        " as access_token= in the query string: URLs end up in logs and browser history."
        " Revoke a token that was sent this way.",
    ),
    "token_not_accepted": ErrorInfo(
        403,
        "This page does not accept bearer tokens",
        "Only a browser signed in through the IdP may use it. To let scripts and services in,"
        " give its access rule accept=session,token (or accept=token).",
    ),
    "token_required": ErrorInfo(
        401,
        "This page takes a bearer token",
        "Its access rule accepts only tokens (accept=token): send 'Authorization: Bearer <token>'.",
    ),
    "token_keys_unavailable": ErrorInfo(
        503,
        "The token issuer's signing keys are unavailable",
        "The gate could not fetch access_token_keys to check the token; it tries again at the"
        " next request (at most once a minute). Check that the URL is the issuer's key set and"
        " that this server reaches it.",
    ),
}


def members_of(groups: Sequence[str], setting: str | None = None) -> str:
    """The ``access_needed`` of a ``forbidden`` refusal over groups: "This page is for members
    of 'a' or 'b'." (``setting``: the setting that asks, named in parentheses)."""
    named = " or ".join(repr(g) for g in groups)
    where = f" ({setting})" if setting else ""
    what = "This application" if setting == "authorized_groups" else "This page"
    return f"{what} is for members of {named}{where}."
