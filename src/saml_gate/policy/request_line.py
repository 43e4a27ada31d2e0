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
  Their values are read upper-cased, as those frameworks do. Query keys are read the way PHP
  names its variables (Symfony and Laravel take ``_method`` from ``$_GET``): ``.method``,
  `` _method``, ``_method%00x`` and ``_method[]`` are all ``_method`` (:func:`php_name`).
* **Paths**: the policy matches the path the app routes — ``scope["path"]`` without
  ``root_path`` (a Starlette ``Mount``, uvicorn's ``--root-path``), as Starlette and Django do.
  Refused: path parameters (``;``, which servlet containers strip: ``/admin;x/users`` is
  ``/admin/users`` to Tomcat) unless ``allow_path_parameters`` (then matched without them),
  percent-encoded ``/ \\ . ; %`` and NUL in the raw path (``%2F``, ``%5C``, ``%2E``, ``%3B``,
  ``%25``, ``%00``: each decodes differently in some server or framework), dot segments and
  control characters (see :func:`canonical_path`), and ``#`` (a fragment is
  never sent; a client library forwarding it would drop it).
* **POST bodies** may carry ``_method`` (Rails and Sinatra through ``Rack::MethodOverride``,
  Symfony, Laravel -- also in JSON --, Spring), which the gate does not read: which body a
  framework parses depends on a Content-Type each reads its own way (Rack takes a POST without
  one for a form and cuts the type at ``;`` or ``,``, PHP also at a space; Laravel reads JSON).
  So with ``method_override_in_body`` (default on), *every* POST with a body
  (:func:`posts_a_body`) must also be allowed under every other method (see
  :class:`saml_gate.policy.AccessPolicy`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import product
from typing import Final
from urllib.parse import unquote_plus, unquote_to_bytes

from saml_gate.errors import GateError

_METHOD: Final = re.compile(r"[A-Z]+(?:-[A-Z]+)*")
_ENCODED_SEPARATOR: Final = re.compile(rb"%(?:2[fFeE5]|5[cC]|3[bB]|00)")
_OVERRIDES: Final = ("x-http-method-override", "x-http-method", "x-method-override")
_SUSPICIOUS: Final = re.compile(r"//|/\.|\\|[\x00-\x1f\x7f]")


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
    return methods_overridden(override_values(headers), query_string)


def override_values(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, ...]:
    """The values of the request's method override headers, as sent (usually none)."""
    found: list[bytes] | None = None
    for key, value in headers:
        if key in OVERRIDE_HEADERS:
            if found is None:
                found = []
            found.append(value)
    return () if found is None else tuple(found)


def query_may_override(query_string: bytes) -> bool:
    """Whether a query key may be read as ``_method``: it names ``method``, or has a
    percent-encoded name that may. Otherwise the query string plays no part in the method."""
    return bool(query_string) and (b"method" in query_string.lower() or b"%" in query_string)


def methods_overridden(header_values: Iterable[bytes], query_string: bytes) -> tuple[str, ...]:
    """The override methods of :func:`override_methods`, from :func:`override_values`."""
    found = [value.decode("latin-1").strip().upper() for value in header_values]
    if query_may_override(query_string):
        found += [value.strip().upper() for value in _query_overrides(query_string)]
    for method in found:
        if _METHOD.fullmatch(method) is None:
            raise GateError("bad_method", f"the method override {method[:32]!r} is not a method")
    return tuple(found)


def _query_overrides(query_string: bytes) -> Iterable[str]:
    """The values of every query key that a framework may read as ``_method``: PHP's name for
    it (:func:`php_name`), compared case-insensitively (ASP.NET's collections are)."""
    for pair in query_string.split(b"&"):
        key, _, value = pair.partition(b"=")
        if php_name(unquote_to_bytes(key.replace(b"+", b" "))).lower() == b"_method":
            yield unquote_plus(value.decode("latin-1"))


def php_name(key: bytes) -> bytes:
    """The variable name PHP gives a decoded query or form key (``php_register_variable_ex``,
    PHP 8): cut at NUL, leading spaces dropped, ``.`` and space read as ``_``; ``name[...]``
    with a closing ``]`` is an array called ``name``, and without one the ``[`` and every later
    space, ``.`` or ``[`` become ``_``. ``b""``: PHP drops the variable."""
    name = key.split(b"\0", 1)[0].lstrip(b" ")
    bracket = name.find(b"[")
    if bracket < 0:
        return name.translate(_PHP_BASE)
    base = name[:bracket].translate(_PHP_BASE)
    if not base or b"]" in name[bracket + 1 :]:
        return base
    return base + b"_" + name[bracket + 1 :].translate(_PHP_REST)


_PHP_BASE: Final = bytes.maketrans(b" .", b"__")
_PHP_REST: Final = bytes.maketrans(b" .[", b"___")


def posts_a_body(method: str, headers: Iterable[tuple[bytes, bytes]], http_version: str) -> bool:
    """A POST that may have a body, whatever its Content-Type: one a framework may read
    ``_method`` from. Without a body: ``Content-Length`` saying 0 (digits only), or an
    HTTP/1 request with neither ``Content-Length`` nor ``Transfer-Encoding`` (RFC 9112 §6.3;
    HTTP/2 and 3 bodies need no length)."""
    if method != "POST":
        return False
    lengths: list[bytes] = []
    for key, value in headers:
        if key == b"transfer-encoding":
            return True
        if key == b"content-length":
            lengths.append(value)
    if not lengths:
        return not http_version.startswith("1")
    return not all(_ZERO.fullmatch(length) for length in lengths)


_ZERO: Final = re.compile(rb"[ \t]*0+[ \t]*")


def route_path(path: str, root_path: str) -> str:
    """The path the app routes: ``path`` without ``root_path`` (Starlette's get_route_path)."""
    if not root_path or not path.startswith(root_path):
        return path
    rest = path[len(root_path) :]
    if not rest:
        return "/"
    return rest if rest[0] == "/" else path


def canonical_path(path: str) -> str:
    """``path`` with ``\\`` as ``/`` and repeated slashes collapsed; refuses dot segments.

    Raises :class:`GateError` ``bad_path`` for dot segments (also ``..;`` as servlet
    containers read it), control characters and anything but an absolute path (e.g. the
    absolute-form ``GET http://host/x``): browsers never send them.
    """
    if not path.startswith("/"):
        raise GateError("bad_path", "the request target is not an absolute path")
    if _SUSPICIOUS.search(path) is None:
        return path
    if any(ord(c) < 0x20 or c == "\x7f" for c in path):
        raise GateError("bad_path", "the path contains control characters")
    segments = path.replace("\\", "/").split("/")
    if any(s.split(";", 1)[0] in (".", "..") for s in segments):
        raise GateError("bad_path", "the path contains '.' or '..' segments")
    body = "/".join(s for s in segments if s)
    return "/" + body + ("/" if body and path.endswith(("/", "\\")) else "")


def format_stems(path: str) -> tuple[str, ...]:
    """The resources a path with a format suffix may also name: ``/x.json`` is ``/x`` to Rails
    (every route ends in ``(.:format)``, the format being what follows the last ``.`` of the
    last segment) and to Spring MVC before 5.3 (a mapping ``/x`` also serves ``/x.*``: cut at
    the first ``.``). A trailing slash is ignored, as both do. Empty for a path without one."""
    bare = path[:-1] if len(path) > 1 and path.endswith("/") else path
    segment = bare.rfind("/") + 1
    first = bare.find(".", segment)
    if first < 0:
        return ()
    last = bare.rfind(".")
    return (bare[:first],) if last == first else (bare[:first], bare[:last])


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
