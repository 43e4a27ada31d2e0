"""What the app will act on: the request's method(s) and the path it routes, decided strictly.

The access policy is only as good as its agreement with the app (or the upstream) about which
resource a request names and with which method. Everything here refuses (400) what the two
could read differently, rather than guessing how the app reads it:

* **Methods** must be upper-case tokens (``GET``, ``PROPFIND``, ``M-SEARCH``). ``post`` is
  refused: Django and httpx upper-case it, so a rule for ``POST`` would not see it while the
  app runs a real POST.
* **Method overrides** (``X-HTTP-Method-Override``, ``X-HTTP-Method``, ``X-Method-Override``, in
  any case and with ``_`` for ``-``, and a ``_method`` query parameter) are honoured by many
  frameworks, so the request must be allowed under its own method *and* under each override.
  Their values are read upper-cased, as those frameworks do.
* **Paths**: the policy matches the path the app routes — ``scope["path"]`` without
  ``root_path`` (a Starlette ``Mount``, uvicorn's ``--root-path``), as Starlette and Django do.
  Refused: path parameters (``;``, which servlet containers strip: ``/admin;x/users`` is
  ``/admin/users`` to Tomcat) unless ``allow_path_parameters`` (then matched without them),
  percent-encoded ``/ \\ . ; %`` and NUL in the raw path (``%2F``, ``%5C``, ``%2E``, ``%3B``,
  ``%25``, ``%00``: each decodes differently in some server or framework), dot segments and
  control characters (see :func:`saml_gate.policy.canonical_path`), and ``#`` (a fragment is
  never sent; a client library forwarding it would drop it).
* **Form POSTs** may carry ``_method`` in their body (Rails, Laravel, Symfony), which the gate
  does not read: with ``method_override_in_body`` (default on), a form POST must also be allowed
  under every method that an access rule names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import product
from typing import Final
from urllib.parse import parse_qsl

from saml_gate.errors import GateError

_METHOD: Final = re.compile(r"[A-Z]+(?:-[A-Z]+)*")
_ENCODED_SEPARATOR: Final = re.compile(rb"%(?:2[fFeE5]|5[cC]|3[bB]|00)")
_OVERRIDES: Final = ("x-http-method-override", "x-http-method", "x-method-override")


def _spellings(name: str) -> Iterable[bytes]:
    """``name`` with each ``-`` also written ``_`` (CGI-style servers read them alike)."""
    parts = name.split("-")
    for seps in product("-_", repeat=len(parts) - 1):
        yield (parts[0] + "".join(s + p for s, p in zip(seps, parts[1:], strict=True))).encode()


#: Header names (lower-case, as in ASGI) that override the method in common frameworks.
OVERRIDE_HEADERS: Final = frozenset(spelling for n in _OVERRIDES for spelling in _spellings(n))


def is_method(method: str) -> bool:
    return _METHOD.fullmatch(method) is not None


def checked_method(method: str) -> str:
    """``method`` if it is an upper-case token; else ``bad_method``."""
    if _METHOD.fullmatch(method) is None:
        raise GateError("bad_method", f"the method {method[:32]!r} is not an upper-case token")
    return method


def override_methods(
    headers: Iterable[tuple[bytes, bytes]], query_string: bytes
) -> tuple[str, ...]:
    """The methods a framework may run this request as, besides its own (upper-cased)."""
    found: list[str] = []
    for key, value in headers:
        if key in OVERRIDE_HEADERS:
            found.append(value.decode("latin-1").strip().upper())
    if b"_method" in query_string or b"%" in query_string:  # the name may be encoded
        found += [
            v.strip().upper()
            for k, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
            if k == "_method"
        ]
    for method in found:
        if _METHOD.fullmatch(method) is None:
            raise GateError("bad_method", f"the method override {method[:32]!r} is not a method")
    return tuple(found)


FORM_TYPES: Final = (b"application/x-www-form-urlencoded", b"multipart/form-data")


def is_form_post(method: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """A POST whose body a framework may read ``_method`` from."""
    if method != "POST":
        return False
    for key, value in headers:
        if key == b"content-type":
            return value.split(b";", 1)[0].strip().lower() in FORM_TYPES
    return False


def route_path(path: str, root_path: str) -> str:
    """The path the app routes: ``path`` without ``root_path`` (Starlette's get_route_path)."""
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path) :]
    if not rest:
        return "/"
    return rest if rest[0] == "/" else path


def check_raw_path(raw_path: bytes | None, path: str, allow_parameters: bool) -> None:
    """Refuse path parameters and percent-encoded separators (module docstring)."""
    if raw_path is not None and _ENCODED_SEPARATOR.search(raw_path) is not None:
        raise GateError(
            "bad_path", "the path has a percent-encoded '/', '\\', '.', ';', '%' or NUL"
        )
    if "#" in path:  # a fragment: clients never send one; httpx would drop it, the gate not
        raise GateError("bad_path", "the path has a '#'")
    if not allow_parameters and ";" in path:
        raise GateError("bad_path", "the path has ';' parameters")


def without_parameters(path: str) -> str:
    """``/a;x/b;y=1`` → ``/a/b``: the path a servlet container serves."""
    if ";" not in path:
        return path
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/"))
