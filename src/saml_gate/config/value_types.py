"""The types of settings' values that are more than a builtin: the choices of a text setting,
a list given as one string or many, the error-page hook's signature."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Literal, TypeAlias

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection
    from starlette.responses import Response

    from saml_gate.errors import GateError

SameSite = Literal["lax", "strict", "none"]
StoreOutage = Literal["serve", "refuse"]
VerifyIsolation = Literal["process", "thread"]

Strings: TypeAlias = str | Iterable[str]
"""A list setting: an iterable of strings, or one string for a list of one."""

ErrorPageHook: TypeAlias = "Callable[[HTTPConnection, GateError], Response | None]"
"""``on_error``: given the request and the refusal, a branded page (any Starlette Response), or
None for the gate's own page. It answers every refusal that gets an error page or JSON error
body (read ``connection.headers["accept"]`` to choose HTML or JSON); not the sign-in redirect,
the 401 to an API call nor a refused WebSocket handshake."""
