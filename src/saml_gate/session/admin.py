"""Session administration (``saml-gate sessions``): list live sessions, revoke them.

It works against the shared store the gates use (their :class:`StoreSettings`: a Redis URL
from ``--store`` or ``SAML_GATE_STORE``, their ``store_prefix`` and ``store_timeout``), through
the same :class:`Revocations` the gates use, so an admin revocation is written and published in
one step and reaches every gate as a sign-out does. The memory store belongs to one gate
process: an outside command cannot see or change it, and says so (exit 2).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TextIO

from saml_gate.config.settings import StoreSettings
from saml_gate.session.revocation import Revocations, SessionRecord
from saml_gate.store import StoreUnavailable, open_store

MEMORY_STORE_MESSAGE = (
    "the memory store lives inside each gate process: this command cannot list or revoke its"
    " sessions. Sign the person out in the browser (/saml/logout) or restart the gate; use a"
    " shared store (--store redis://...) for session administration across workers and hosts"
)


class NotShared(Exception):
    """The store is the memory store: nothing to administer from outside the gate."""


async def run(
    settings: StoreSettings, action: str, user: str | None, session: str | None, out: TextIO
) -> int:
    """``list`` or ``revoke`` (by user or session ID); the exit status (1: nothing matched)."""
    if settings.store == "memory":
        raise NotShared(MEMORY_STORE_MESSAGE)
    store = open_store(settings)
    try:
        revocations = Revocations(store, settings)
        now = settings.clock()
        live = await revocations.live_sessions(now)
        chosen = [
            r
            for r in live
            if (user is None or r.name_id == user) and (session is None or r.session_id == session)
        ]
        if action == "list":
            _print(chosen, out)
            return 0
        if not chosen:
            print("no live session matches", file=out)
            return 1
        if session is None:  # a person: every session of theirs, as Universal Logout ends them
            people = {(r.issuer, r.name_id) for r in chosen}
            ended = 0
            for issuer, name_id in sorted(people):
                ended += await revocations.revoke_person(issuer, name_id, now)
        else:
            ended = await revocations.revoke_sessions(chosen, now)
        print(f"revoked {ended} session(s); every gate sharing this store refuses them", file=out)
        return 0
    finally:
        await store.close()


def _print(records: list[SessionRecord], out: TextIO) -> None:
    print(f"{'SESSION ID':<18} {'EXPIRES (UTC)':<20} USER", file=out)
    for r in sorted(records, key=lambda r: (r.name_id, r.expires_at)):
        expires = datetime.fromtimestamp(r.expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{r.session_id:<18} {expires:<20} {r.name_id}", file=out)
    print(f"{len(records)} live session(s)", file=out)


__all__ = ["NotShared", "StoreUnavailable", "run"]
