"""What goes over the pipes between the gate and its verification children (and the zygote).

Each message is one frame: a 4-byte big-endian length, then the payload. Requests are pickles
(the parent is trusted); answers are JSON, so a child that hostile input took over cannot run
code in the app's process by what it answers. A verified login or logout message crosses as a
JSON object; the parent rebuilds it only from fields of the expected types, and any other answer
is a :class:`WorkerFailed`, as if the child had crashed.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
import sys
from datetime import datetime
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from saml_gate.saml.logout import IdpLogoutMessage
    from saml_gate.saml.response import VerifiedLogin

LENGTH: Final = struct.Struct(">I")
"""The frame header: the payload's length."""
MAX_FRAME: Final = 64 * 1024 * 1024
READY: Final = b'{"ready": true}'
"""A child's first frame: it has imported the gate and waits for requests."""


class WorkerFailed(Exception):
    """A child could not do the work: it exited (crashed) or answered something unexpected."""


def no_clock() -> float:
    """The clock a child's settings carry (the time is passed in with each job). Here, not in
    the pool's module: unpickling the settings imports it, and the child must not import the
    pool (anyio, subprocess)."""
    raise RuntimeError("a verification worker has no clock: the time is passed in")


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(LENGTH.pack(len(payload)) + payload)
    stream.flush()


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame, or None at end of stream (blocking)."""
    head = stream.read(LENGTH.size)
    if len(head) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(head)
    if size > MAX_FRAME:
        raise WorkerFailed(f"frame of {size} bytes")
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def send_message(sock: socket.socket, payload: bytes, fds: list[int] | None = None) -> None:
    """One frame over the zygote's Unix socket, with ``fds`` (SCM_RIGHTS) on its header."""
    frame = LENGTH.pack(len(payload)) + payload
    sent = socket.send_fds(sock, [frame], fds) if fds else sock.send(frame)
    if sent < len(frame):
        sock.sendall(frame[sent:])


def receive_message(sock: socket.socket, max_fds: int) -> tuple[bytes, list[int]] | None:
    """The next frame and the descriptors sent with it, or None at end of stream (blocking).

    The descriptors arrive with the header's bytes: the header is read in full before the
    payload, so a message's descriptors are never taken by the read of another's payload.
    """
    head, fds = b"", []
    while len(head) < LENGTH.size:
        chunk, more, _, _ = socket.recv_fds(sock, LENGTH.size - len(head), max_fds)
        fds += more
        if not chunk:
            _close_all(fds)
            return None
        head += chunk
    (size,) = LENGTH.unpack(head)
    payload = b""
    while size <= MAX_FRAME and len(payload) < size:
        chunk = sock.recv(size - len(payload))
        if not chunk:
            break
        payload += chunk
    if len(payload) < size:
        _close_all(fds)
        return None
    return payload, fds


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        os.close(fd)


# ------------------------------------------------------------------------ answers, checked
_TEXT: Final = (str,)
_MAYBE_TEXT: Final = (str, type(None))
_NUMBER: Final = (int, float)
_LOGIN: Final = {
    "name_id": _TEXT,
    "name_id_format": _MAYBE_TEXT,
    "session_index": _MAYBE_TEXT,
    "attributes": (dict,),
    "authn_instant": _TEXT,
    "authn_context": _MAYBE_TEXT,
    "session_not_on_or_after": _MAYBE_TEXT,
    "issuer": _TEXT,
    "in_response_to": _MAYBE_TEXT,
    "assertion_id": _TEXT,
    "replay_until": _NUMBER,
}
_LOGOUT_REQUEST: Final = {
    "kind": _TEXT,
    "id": _TEXT,
    "issuer": _TEXT,
    "name_id": _TEXT,
    "session_indexes": (list,),
    "relay_state": _MAYBE_TEXT,
    "valid_until": _NUMBER,
}
_LOGOUT_RESPONSE: Final = {
    "kind": _TEXT,
    "in_response_to": _MAYBE_TEXT,
    "status": _TEXT,
    "partial": (bool,),
    "relay_state": _MAYBE_TEXT,
}


def _checked(wire: Any, shape: dict[str, tuple[type, ...]], what: str) -> dict[str, Any]:
    """``wire`` if it is an object with exactly the fields of ``shape``, of their types."""
    if not isinstance(wire, dict) or wire.keys() != shape.keys():
        raise WorkerFailed(f"the worker answered a malformed {what}")
    for name, types in shape.items():
        value = wire[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise WorkerFailed(f"the worker answered a malformed {what} ({name})")
    return wire


def _texts(values: Any, what: str) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise WorkerFailed(f"the worker answered a malformed {what} (not a list of strings)")
    return tuple(values)


def _instant(value: str | None, what: str) -> datetime | None:
    try:
        return None if value is None else datetime.fromisoformat(value)
    except ValueError as exc:
        raise WorkerFailed(f"the worker answered a malformed {what} (a time)") from exc


def login_to_wire(login: VerifiedLogin) -> dict[str, Any]:
    """The login as a JSON object: a copy of its fields (``vars``, not ``dataclasses.fields``:
    once per sign-in in the child), the times in ISO 8601."""
    wire = dict(vars(login))
    wire["attributes"] = {k: list(v) for k, v in login.attributes.items()}
    for name in ("authn_instant", "session_not_on_or_after"):
        value = wire[name]
        wire[name] = value.isoformat() if value is not None else None
    return wire


def _intern(value: str | None) -> str | None:
    return None if value is None else sys.intern(value)


def login_from_wire(wire: Any) -> VerifiedLogin:
    """The verified login the child answered. The texts every sign-in through this IdP repeats
    (its entity ID, the NameID format, the AuthnContext class and the attribute names) are
    interned: the session kept for each sign-in (``SessionCodec``'s cache) then shares one
    copy of each rather than holding its own (about 450 bytes a session with Okta's). An
    attribute value equal to the NameID (Okta's email, often) is the NameID's string."""
    from saml_gate.saml.response import VerifiedLogin

    values = dict(_checked(wire, _LOGIN, "login"))
    name_id = values["name_id"]
    attributes: dict[str, tuple[str, ...]] = {}
    for name, vs in values["attributes"].items():
        texts = _texts(vs, "login")
        if name_id in texts:
            texts = tuple(name_id if text == name_id else text for text in texts)
        attributes[sys.intern(name)] = texts
    values["attributes"] = MappingProxyType(attributes)
    for name in ("issuer", "name_id_format", "authn_context"):
        values[name] = _intern(values[name])
    values["authn_instant"] = _instant(values["authn_instant"], "login")
    values["session_not_on_or_after"] = _instant(values["session_not_on_or_after"], "login")
    return VerifiedLogin(**values)


def logout_message_to_wire(message: IdpLogoutMessage) -> dict[str, Any]:
    from saml_gate.saml.logout import IdpLogoutRequest

    kind = "request" if isinstance(message, IdpLogoutRequest) else "response"
    return {"kind": kind, **dataclasses.asdict(message)}


def logout_message_from_wire(wire: Any) -> IdpLogoutMessage:
    from saml_gate.saml.logout import IdpLogoutRequest, IdpLogoutResponse

    kind = wire.get("kind") if isinstance(wire, dict) else None
    if kind == "request":
        values = dict(_checked(wire, _LOGOUT_REQUEST, "LogoutRequest"))
        values["session_indexes"] = _texts(values["session_indexes"], "LogoutRequest")
        del values["kind"]
        return IdpLogoutRequest(**values)
    if kind == "response":
        values = dict(_checked(wire, _LOGOUT_RESPONSE, "LogoutResponse"))
        del values["kind"]
        return IdpLogoutResponse(**values)
    raise WorkerFailed("the worker answered neither a LogoutRequest nor a LogoutResponse")


def request_url_from_wire(wire: Any) -> tuple[str, str]:
    """(request ID, the IdP URL carrying it): an AuthnRequest or a LogoutRequest."""
    texts = _texts(wire, "request URL")
    if len(texts) != 2:
        raise WorkerFailed("the worker answered a malformed request URL (not an ID and a URL)")
    return texts[0], texts[1]


def logout_request_from_wire(wire: Any) -> tuple[str, str] | None:
    """(request ID, URL), or None: the IdP has no SLO endpoint."""
    return None if wire is None else request_url_from_wire(wire)


def logout_response_from_wire(wire: Any) -> str | None:
    if wire is not None and not isinstance(wire, str):
        raise WorkerFailed("the worker answered a malformed LogoutResponse URL")
    return wire
