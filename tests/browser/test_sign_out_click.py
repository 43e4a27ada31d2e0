"""One-click sign-out in a real browser (Debian's Chromium): the app's button signs out without
the confirmation page, so does a form the app answers with a 307 to the gate (Django admin's
"Log out"), and a form on another site only reaches the confirmation page. The gate, with its
development IdP, runs under ``saml-gate run`` on loopback; the other site on another port."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from tests.browser.conftest import CHROMIUM, FLAGS
from tests.test_cli import Server, cli_env, free_port

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


@pytest.fixture
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    state = tmp_path_factory.mktemp("state")
    env = cli_env(SAML_GATE_STATE_DIR=str(state), SAML_GATE_SECRET_KEY="k" * 40)
    server = Server("run", "tests.browser.sign_out_app:app", "--dev-idp",
                    "--base-url", f"http://127.0.0.1:{port}", env=env, port=port)  # fmt: skip
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def other_site(gate: str) -> Iterator[str]:
    """A page on another site that submits a form to the gate's sign-out when clicked."""
    page = (
        f"<form method=post action='{gate}/saml/logout'><button id=evil>Win a prize</button></form>"
    ).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # localhost is another site than 127.0.0.1 for the browser
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()


async def test_one_click_sign_out_in_chromium(
    need_chromium: None, gate: str, other_site: str
) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context()
            page = await context.new_page()

            async def sign_in() -> None:
                await page.goto(gate + "/")
                await page.click("button.user")  # the development IdP's first person
                await page.wait_for_url(gate + "/")
                assert "@" in await page.inner_text("#who")

            await sign_in()
            # Another site's form: the confirmation page, still signed in (the session cookie,
            # SameSite=Lax, is not even sent with it).
            await page.goto(other_site)
            await page.click("#evil")
            await page.wait_for_load_state()
            assert "Sign out of this application?" in await page.content()
            await page.goto(gate + "/")
            assert "@" in await page.inner_text("#who")
            # The app's own button: signed out at once.
            await page.click("form.saml-gate-sign-out button")
            await page.wait_for_load_state()
            assert "You are signed out" in await page.content()
            # A form the app answers with a 307 to the gate (Django admin's "Log out").
            await sign_in()
            await page.click("#app-logout")
            await page.wait_for_load_state()
            assert "You are signed out" in await page.content()
            await page.goto(gate + "/")
            assert "/saml/devidp/" in page.url  # a new sign-in starts
        finally:
            await browser.close()
