"""Chromium (Debian's /usr/bin/chromium) driven by Playwright for Python; never its own download.

Each test launches its own browser, since the host-name mapping (--host-resolver-rules) holds
the ports of that test's proxies. Playwright gives every launch a fresh temporary
--user-data-dir, and ``new_context()`` is an incognito-like context: no cookies, no cache.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.sites import Sites
from tests.interop.conftest import need_simplesamlphp, servers

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

__all__ = ["artifacts", "chromium", "need_chromium", "need_simplesamlphp", "servers"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def need_chromium() -> None:
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.skip("Chromium is not installed: apt-get install chromium (.ci/run does this)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("Playwright for Python is not installed: pip install -e '.[test]'")


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/ at the project root (kept after the run, ignored by git)."""
    folder = request.config.rootpath / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


Chromium = Callable[[Sites], AbstractAsyncContextManager["BrowserContext"]]


@pytest.fixture
def chromium(need_chromium: None) -> Chromium:
    """``async with chromium(sites) as context``: a fresh context in a browser that resolves
    the sites' public names to their proxies and trusts their test certificate."""

    @asynccontextmanager
    async def launch(sites: Sites) -> AsyncIterator[BrowserContext]:
        from playwright.async_api import async_playwright

        args = list(FLAGS)
        if sites.resolver_rules:
            args.append("--host-resolver-rules=" + ", ".join(sites.resolver_rules))
        if sites.trusted_spki:
            # Valid HTTPS for the test certificate (not an ignored error): Secure cookies work
            # as on a real site.
            args.append("--ignore-certificate-errors-spki-list=" + sites.trusted_spki)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args)
            try:
                context = await browser.new_context(viewport={"width": 1000, "height": 700})
                context.set_default_timeout(20_000)
                yield context
            finally:
                await browser.close()

    return launch
