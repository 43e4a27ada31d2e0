"""Auth events: one structured log line each, the app's hooks, and the metrics.

Every sign-in, refusal, sign-out, Single Logout, session expiry and policy denial becomes an
:class:`AuthEvent`. It is logged on the ``saml_gate.auth`` logger with stable field names in
``extra`` (see :data:`EVENT_FIELDS`), passed to the ``on_event`` hooks (sync or async; a failing
hook is logged and never breaks the request), and counted in the metrics when they are on.
Never in an event: the assertion, cookies, keys or secrets.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from operator import attrgetter
from typing import Any, Final, Literal, get_args

import anyio.to_thread

from saml_gate.errors import ErrorCode
from saml_gate.ops.logs import EVENT_FIELDS as EVENT_FIELDS  # documented here too
from saml_gate.ops.logs import may_name_saml, plain_consoles, redact_saml
from saml_gate.user import SamlUser

log = logging.getLogger("saml_gate.auth")

EventKind = Literal[
    "login",
    "login_refused",
    "logout",
    "slo",
    "session_expired",
    "policy_denied",
    "request_refused",
    "reassertion",
    "universal_logout",
    "token_auth",
]
Outcome = Literal["success", "failure"]
KINDS: Final = frozenset(get_args(EventKind))

Hook = Callable[["AuthEvent"], Awaitable[None] | None]


_NO_EXTRA: Final[dict[str, Any]] = {}
"""``AuthEvent``'s ``extra`` when none is given (never used as one: each event gets its own)."""


@dataclass(frozen=True)
class AuthEvent:
    event: EventKind
    outcome: Outcome
    error_code: ErrorCode | None = None
    reason: str | None = None
    name_id: str | None = None
    email: str | None = None
    groups: tuple[str, ...] = ()
    issuer: str | None = None
    client: str | None = None
    request_id: str | None = None
    method: str | None = None
    path: str | None = None
    idp_initiated: bool | None = None
    step_up: bool | None = None
    duration_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __init__(
        self,
        event: EventKind,
        outcome: Outcome,
        error_code: ErrorCode | None = None,
        reason: str | None = None,
        name_id: str | None = None,
        email: str | None = None,
        groups: tuple[str, ...] = (),
        issuer: str | None = None,
        client: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
        idp_initiated: bool | None = None,
        step_up: bool | None = None,
        duration_ms: float | None = None,
        extra: dict[str, Any] = _NO_EXTRA,
    ) -> None:
        """The dataclass's own ``__init__`` (the fields above, in their order, with their
        defaults), but filling the fields at once rather than through one ``object.__setattr__``
        each: half the instructions, and every sign-in makes an event."""
        self.__dict__.update(
            event=event,
            outcome=outcome,
            error_code=error_code,
            reason=reason,
            name_id=name_id,
            email=email,
            groups=groups,
            issuer=issuer,
            client=client,
            request_id=request_id,
            method=method,
            path=path,
            idp_initiated=idp_initiated,
            step_up=step_up,
            duration_ms=duration_ms,
            extra={} if extra is _NO_EXTRA else extra,
        )

    @classmethod
    def about(cls, user: SamlUser, event: EventKind, outcome: Outcome, **fields: Any) -> AuthEvent:
        """An event about a signed-in person or a service (a bearer token): their identity
        fields filled in; a service's ``extra`` says so, with its token's name."""
        if user.is_service:
            fields.setdefault("extra", {"principal": "service", "token_name": user.token_name})
        return cls(
            event,
            outcome,
            name_id=user.name_id,
            email=user.email,
            groups=user.groups,
            issuer=user.issuer,
            **fields,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["groups"] = list(self.groups)
        return data


#: What browsers fetch on their own (a tab's icon): a refusal there is not worth a second line.
_BROWSER_FETCHES: Final = ("/favicon.ico", "/apple-touch-icon")


def _level(event: AuthEvent) -> int:
    if event.outcome == "success":
        return logging.INFO
    if event.event == "policy_denied" and (event.path or "").startswith(_BROWSER_FETCHES):
        return logging.DEBUG  # a browser's own icon request doubles every denial otherwise
    return logging.WARNING


def _summary(event: AuthEvent) -> str:
    """The rest of a sign-in's line: what an operator asks first (which groups, which IdP,
    started here or at the IdP, a step-up, and the request id to find it again)."""
    if event.event != "login":
        return ""
    parts = [
        f"groups=[{', '.join(event.groups)}]",
        f"idp={event.issuer or '?'}",
        f"idp_initiated={'yes' if event.idp_initiated else 'no'}",
    ]
    if event.step_up is not None:
        parts.append(f"step_up={'yes' if event.step_up else 'no'}")
    parts.append(f"request_id={event.request_id or '-'}")
    return " " + " ".join(parts)


_FIELDS_OF: Final = attrgetter(*EVENT_FIELDS)
_MESSAGE: Final = "saml-gate %s %s%s%s%s"


def _log_line(level: int, event: AuthEvent) -> None:
    """``event``'s line on the ``saml_gate.auth`` logger, which is enabled for ``level``.

    As ``log.log`` would make and handle it, but without its search of the stack for the
    caller (the caller is this function, named directly); and when only the gate's own
    console handlers would print it (:func:`~saml_gate.ops.logs.plain_consoles`), printed by
    them without a log record: the same line, a fifth of the instructions."""
    args: tuple[str, ...] = (
        event.event,
        event.name_id or event.client or "?",
        f" {event.error_code}" if event.error_code else "",
        f" ({event.reason})" if event.reason else "",
        _summary(event),
    )
    consoles = plain_consoles(log, level)
    if consoles is not None:
        message = _MESSAGE % args
        if log.filters and may_name_saml(message):
            # RedactSamlMessages (plain_consoles checked): each argument, as it redacts them
            args = tuple([redact_saml(a) for a in args])
            message = _MESSAGE % args
        levelname = logging.getLevelName(level)
        failed = [h for h in consoles if not h.print_line(levelname, log.name, message)]
        for handler in failed:  # as StreamHandler.emit reports it
            handler.handleError(_record(level, event, args))
        return
    log.handle(_record(level, event, args))


def _record(level: int, event: AuthEvent, args: tuple[str, ...]) -> logging.LogRecord:
    here = sys._getframe()
    return log.makeRecord(
        log.name,
        level,
        here.f_code.co_filename,
        here.f_lineno,
        _MESSAGE,
        args,
        None,
        here.f_code.co_name,
        dict(zip(EVENT_FIELDS, _FIELDS_OF(event), strict=True)) | event.extra,
    )


class EventSink:
    """Fans events out to the log, the hooks and an optional metrics recorder."""

    def __init__(self, hooks: Iterable[Hook] = (), metrics: Any = None) -> None:
        self._hooks = tuple(hooks)
        self.metrics = metrics
        self._pending: set[asyncio.Task[None]] = set()

    def emit(self, event: AuthEvent) -> None:
        """Log, count and hand the event to the hooks (in the background: never blocks)."""
        if event.event not in KINDS:
            raise ValueError(f"unknown auth event {event.event!r}")
        level = _level(event)
        if log.isEnabledFor(level):  # the line and its fields built only for someone listening
            _log_line(level, event)
        if self.metrics is not None:
            self.metrics.record(event)
        if self._hooks:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            for hook in self._hooks:
                task = loop.create_task(self._run_hook(hook, event))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    @staticmethod
    async def _run_hook(hook: Hook, event: AuthEvent) -> None:
        try:
            if inspect.iscoroutinefunction(hook):
                await hook(event)
            else:
                result = await anyio.to_thread.run_sync(hook, event)
                if inspect.isawaitable(result):
                    await result
        except Exception:
            logging.getLogger("saml_gate").exception(
                "saml-gate on_event hook %r failed for a %s event", hook, event.event
            )

    async def drain(self) -> None:
        """Wait for hooks still running (tests, shutdown)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
