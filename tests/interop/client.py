"""A browser-less client for the real HTTP flow: HTML forms, and public host names on loopback.

httpx keeps cookies across the IdP and the gate like a browser's jar does, but knows nothing of
SameSite; that is what the Chromium tests are for.
"""

from __future__ import annotations

import base64
import ssl
import zlib
from dataclasses import dataclass
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from lxml import etree, html

HTML_ACCEPT = {"accept": "text/html,application/xhtml+xml"}


@dataclass(frozen=True)
class HtmlForm:
    action: str
    method: str
    fields: dict[str, str]


def html_forms(page: httpx.Response) -> list[HtmlForm]:
    """Every form of an HTML page, its action made absolute."""
    document = html.fromstring(page.text)
    forms = []
    for form in document.forms:
        fields = {k: v for k, v in form.form_values()}
        action = urljoin(str(page.url), form.get("action") or str(page.url))
        forms.append(HtmlForm(action=action, method=(form.method or "GET").upper(), fields=fields))
    return forms


def form_with(page: httpx.Response, field: str) -> HtmlForm:
    """The page's form that has ``field`` (fails with the page's text when there is none)."""
    for form in html_forms(page):
        if field in form.fields:
            return form
    raise AssertionError(f"no form with {field!r} at {page.url} ({page.status_code}):\n{page.text}")


async def submit(client: httpx.AsyncClient, form: HtmlForm, **values: str) -> httpx.Response:
    """Submit ``form`` (POST) with ``values`` filled in, following the IdP's redirects."""
    return await client.post(
        form.action, data={**form.fields, **values}, headers=HTML_ACCEPT, follow_redirects=True
    )


async def start_at_gate(client: httpx.AsyncClient, url: str) -> str:
    """A browser navigation to a protected URL: the gate's 303 to the IdP (its Location)."""
    response = await client.get(url, headers=HTML_ACCEPT)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def error_code(response: httpx.Response) -> str:
    """The stable error code on a gate's error page."""
    marker = "Error code: <code>"
    assert marker in response.text, response.text
    return response.text.split(marker, 1)[1].split("</code>", 1)[0]


def authn_request(location: str) -> etree._Element:
    """The AuthnRequest carried by an HTTP-Redirect binding URL."""
    query = parse_qs(urlsplit(location).query)
    return etree.fromstring(zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15))


def saml_response_xml(form: HtmlForm) -> etree._Element:
    return etree.fromstring(base64.b64decode(form.fields["SAMLResponse"]))


class HostMap(httpx.AsyncBaseTransport):
    """Connects public host names to loopback ports, like Chromium's --host-resolver-rules.

    The URL, the Host header, the TLS server name and the cookie jar keep the public name.
    """

    def __init__(self, routes: dict[str, int], verify: ssl.SSLContext | bool = True) -> None:
        self._routes = routes
        self._inner = httpx.AsyncHTTPTransport(verify=verify)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host in self._routes:
            # A new request: httpx reads cookies back against the original one's URL.
            request = httpx.Request(
                request.method,
                request.url.copy_with(host="127.0.0.1", port=self._routes[host]),
                headers=request.headers,
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": host},
            )
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
