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
from saml_gate.user import SamlUser

log = logging.getLogger("saml_gate.auth")

#: The fields every auth log record carries (None when not applicable). Stable: the README
#: documents them and log pipelines depend on them.
EVENT_FIELDS: Final = (
    "event",
    "outcome",
    "error_code",
    "reason",
    "name_id",
    "email",
    "groups",
    "issuer",
    "client",
    "request_id",
    "method",
    "path",
    "idp_initiated",
    "step_up",
    "duration_ms",
)

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


def _log_line(level: int, event: AuthEvent) -> None:
    """``event``'s line on the ``saml_gate.auth`` logger, which is enabled for ``level``.

    As ``log.log`` would make and handle it, but without its search of the stack for the
    caller (a tenth of a sign-in's log line): the caller is this function, named directly."""
    here = sys._getframe()
    record = log.makeRecord(
        log.name,
        level,
        here.f_code.co_filename,
        here.f_lineno,
        "saml-gate %s %s%s%s%s",
        (
            event.event,
            event.name_id or event.client or "?",
            f" {event.error_code}" if event.error_code else "",
            f" ({event.reason})" if event.reason else "",
            _summary(event),
        ),
        None,
        here.f_code.co_name,
        dict(zip(EVENT_FIELDS, _FIELDS_OF(event), strict=True)) | event.extra,
    )
    log.handle(record)


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
