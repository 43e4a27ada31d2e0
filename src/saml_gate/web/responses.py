"""The few response shapes every gate endpoint uses: cookies added, 303 redirects, no-store JSON."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from starlette.responses import JSONResponse, RedirectResponse, Response

NO_STORE: Final[Mapping[str, str]] = {"Cache-Control": "no-store"}


def with_cookies(response: Response, cookies: Iterable[bytes]) -> Response:
    """``response`` with a Set-Cookie header for each value, in order."""
    response.raw_headers.extend((b"set-cookie", cookie) for cookie in cookies)
    return response


def see_other(location: str, cookies: Iterable[bytes] = ()) -> Response:
    """A 303 redirect that no cache keeps (it carries a sign-in's or sign-out's cookies)."""
    return with_cookies(RedirectResponse(location, status_code=303, headers=NO_STORE), cookies)


def no_store_json(body: Any, status_code: int = 200) -> Response:
    return JSONResponse(body, status_code=status_code, headers=NO_STORE)
