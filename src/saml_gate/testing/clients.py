"""The browser's side of the kit's flows, written once and driven by a sync or an async client.

A flow is a generator: it yields the next request (:class:`HttpStep`) and is sent the gate's
answer, so the same steps run on Starlette's ``TestClient`` and on an ``httpx.AsyncClient`` over
``httpx.ASGITransport``. The clients are typed by what the kit calls (:class:`SyncClient`,
:class:`AsyncClient`), so ``httpx`` and ``httpx2`` clients both fit, and each flow returns the
client's own response type. Redirects are never followed by the client: a flow reads each one,
as the test IdP would.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, TypeAlias, TypeVar

NAVIGATION: Final[Mapping[str, str]] = {
    "accept": "text/html,application/xhtml+xml",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
}
"""What a browser sends on a page load: the gate starts sign-ins only for those."""


class Answer(Protocol):
    """What the kit reads of a response (``httpx.Response`` and ``httpx2.Response`` fit)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def text(self) -> str: ...


R = TypeVar("R", bound=Answer)
Out_co = TypeVar("Out_co", covariant=True)


class HttpClient(Protocol[Out_co]):
    """A client that keeps cookies, as far as the kit uses it; ``Out_co``: what ``request``
    returns (a response, or an awaitable of one)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        data: Mapping[str, str] | None,
        content: bytes | None,
        follow_redirects: bool,
    ) -> Out_co: ...


SyncClient: TypeAlias = HttpClient[R]
"""Starlette's ``TestClient``, an ``httpx.Client``: ``request`` returns the response."""
AsyncClient: TypeAlias = HttpClient[Awaitable[R]]
"""An ``httpx.AsyncClient`` over ``httpx.ASGITransport``: ``request`` is a coroutine."""


@dataclass(frozen=True)
class HttpStep:
    """One request of a flow: ``data`` makes it a form POST, ``content`` a POST of those bytes;
    ``headers``: a server's call (Universal Logout) instead of a browser's page load."""

    method: str
    url: str
    data: Mapping[str, str] | None = None
    content: bytes | None = None
    headers: Mapping[str, str] | None = None


Flow = Generator[HttpStep, Answer, None]
"""Yields requests, is sent their answers; the driver returns the last answer."""


def drive(client: SyncClient[R], flow: Flow) -> R:
    """Run ``flow`` on a sync client; the last answer."""
    step = next(flow)
    while True:
        answer = client.request(
            step.method,
            step.url,
            headers=NAVIGATION if step.headers is None else step.headers,
            data=step.data,
            content=step.content,
            follow_redirects=False,
        )
        try:
            step = flow.send(answer)
        except StopIteration:
            return answer


async def drive_async(client: AsyncClient[R], flow: Flow) -> R:
    """Run ``flow`` on an async client; the last answer."""
    step = next(flow)
    while True:
        answer = await client.request(
            step.method,
            step.url,
            headers=NAVIGATION if step.headers is None else step.headers,
            data=step.data,
            content=step.content,
            follow_redirects=False,
        )
        try:
            step = flow.send(answer)
        except StopIteration:
            return answer
