"""Warnings that matter to an operator, logged at start-up and then once a day.

An IdP signing or SP certificate that expires within 30 days (or has expired), the memory store
behind several worker processes, a base_url on plain http for a public host or ending in the
gate's prefix, and debug details shown to all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from saml_gate.background import BackgroundJob
from saml_gate.ops.certificates import EXPIRY_WARNING_DAYS, certificate_days_left
from saml_gate.policy.hosts import is_number
from saml_gate.store import MemoryStore, Store

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings

#: (what, PEM) of every certificate to watch: ("IdP signing", ...), ("SP", ...).
Certificates = Callable[[], list[tuple[str, bytes]]]

log = logging.getLogger("saml_gate")

DAY: Final = 86400.0


class StartupWarnings:
    def __init__(
        self,
        settings: GateSettings,
        certificates: Certificates,
        store: Store,
        interval: float = DAY,
    ) -> None:
        self._settings = settings
        self._certificates = certificates
        self._store = store
        self._interval = interval
        self._job = BackgroundJob(self._daily)

    def check(self) -> list[str]:
        """Log every current warning; return their event names."""
        found = self.collect()
        for event, message in found:
            log.warning("saml-gate: %s", message, extra={"event": event})
        return [event for event, _ in found]

    def collect(self) -> list[tuple[str, str]]:
        """(event name, message) for every warning that applies now."""
        s = self._settings
        found: list[tuple[str, str]] = []

        def warn(event: str, message: str, *args: object) -> None:
            found.append((event, message % args))

        now = s.clock()
        for what, pem in self._certificates():
            subject, days = certificate_days_left(pem, now)
            if days < EXPIRY_WARNING_DAYS:
                state = (
                    f"expired {-days:.0f} days ago" if days < 0 else f"expires in {days:.0f} days"
                )
                fix = (
                    "renew it and update the IdP (saml-gate keygen, saml-gate setup)"
                    if what == "SP"
                    else "the IdP must roll its key over (a metadata URL picks that up)"
                )
                warn(
                    "certificate_expiry",
                    "the %s certificate %s %s: %s",
                    what,
                    subject,
                    state,
                    fix,
                )
        workers = worker_count()
        if workers > 1 and isinstance(self._store, MemoryStore):
            warn(
                "memory_store_with_workers",
                "this is one of %d worker processes with the memory store: replay"
                " protection and sign-outs are per process. Set store to a Redis URL"
                " (store=redis://host:6379/0, SAML_GATE_STORE) shared by all workers",
                workers,
            )
        found += s.base_url_warnings()
        if s.debug:
            warn("debug_on", "debug is on: error details are shown to every client")
        return found

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    async def _daily(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.check()


def worker_count() -> int:
    """How many worker processes the server was asked for (uvicorn/gunicorn ``--workers``,
    gunicorn ``-w``, ``WEB_CONCURRENCY``); workers inherit the server's command line."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        value = None
        if arg in ("--workers", "-w") and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--workers="):
            value = arg.split("=", 1)[1]
        if value is not None and is_number(value):
            return int(value)
    env = os.environ.get("WEB_CONCURRENCY", "")
    return int(env) if is_number(env) else 1
