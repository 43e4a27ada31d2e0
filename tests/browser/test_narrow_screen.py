"""The gate's pages on a 390 px phone screen in Chromium: nothing cut off or scrolled sideways
(the setup sheet's long URLs and certificate, an error page, the demo's who-am-I page).
Screenshots go to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from saml_gate.web.whoami import whoami_app
from tests.browser.conftest import CHROMIUM, FLAGS
from tests.conftest import HarnessFactory
from tests.support import Harness

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
HTML = {"accept": "text/html", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}


async def test_pages_fit_a_390px_screen(
    need_chromium: None, artifacts: Path, make_harness: HarnessFactory
) -> None:
    from playwright.async_api import async_playwright

    h: Harness = make_harness(app=whoami_app(), authorized_groups=["Finance"])
    pages = {"setup": (await h.client.get("/saml/setup", headers=HTML)).text}
    assert (await h.login(path="/")).status_code == 303
    forbidden = await h.client.get("/", headers={**HTML, "x-request-id": "phone-1"})
    assert forbidden.status_code == 403
    pages["forbidden"] = forbidden.text
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context(viewport=PHONE, device_scale_factor=1)
            page = await context.new_page()
            for name, document in pages.items():
                await page.set_content(document)
                width = await page.evaluate("document.documentElement.scrollWidth")
                await page.screenshot(path=str(artifacts / f"{name}-390px.png"), full_page=True)
                assert width <= PHONE["width"], f"{name}: {width}px wide on a 390px screen"
                # Every table cell and paragraph ends inside the screen (nothing cut off).
                overflow = await page.evaluate(
                    "[...document.querySelectorAll('main, main *')]"
                    ".filter(e => e.tagName !== 'PRE' && !e.closest('pre'))"
                    ".map(e => e.getBoundingClientRect().right)"
                    ".filter(r => r > innerWidth + 0.5).length"
                )
                assert overflow == 0, f"{name}: {overflow} elements end beyond the screen"
        finally:
            await browser.close()
