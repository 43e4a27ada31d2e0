"""Gates sharing a store must share their keys and secrets: each one says so when another does not.

Every gate of a deployment (every worker on every host behind one load balancer, sharing one
store) must sign and verify with the same values, or a person signed in by one gate is asked to
sign in again by the next, a sign-in started on one fails on another, and an upstream that
fetched one gate's JWKS refuses the identity JWTs of the others. By default each host generates
its own SP key pair and JWT key in ``state_dir``, so this is the usual mistake of a first
multi-host deployment.

So each gate publishes a record of what it signs with in the store (an expiring set; re-announced
every :data:`INTERVAL` seconds, gone :data:`LIFETIME` seconds after its gate stops), compares it
with the others' at start-up and then at each announcement, and logs every disagreement once, at
ERROR, naming the values that differ and never the values themselves: secrets appear only as
salted scrypt fingerprints (each record has its own salt; a gate compares by fingerprinting its
own secrets with the other record's salt), keys by the SHA-256 of their public certificate or
their JWK thumbprint, both public anyway (``/saml/metadata``, ``/saml/jwks.json``).

:meth:`GateAgreement.start` is the one call that starts it (with the gate's other start-up
work); ``saml-gate check`` compares without announcing (:meth:`GateAgreement.compare`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final

import anyio

from saml_gate.background import BackgroundJob, raise_if_cancelled
from saml_gate.store import MemoryStore, Store, StoreUnavailable
from saml_gate.store.base import Announce

if TYPE_CHECKING:
    from saml_gate.config.settings import GateSettings

log = logging.getLogger("saml_gate")

#: The expiring set of the gates' records, under the store's prefix.
RECORDS: Final = "gates"
#: Seconds between a gate's announcements (and comparisons).
INTERVAL: Final = 30.0
#: Seconds a record outlives its last announcement: a stopped gate is forgotten after this.
LIFETIME: Final = 3 * INTERVAL
#: The scrypt cost of a secret's fingerprint (16 MiB, about 50 ms): a record read from the store
#: is no shortcut to guessing a weak secret.
_SCRYPT: Final = {"n": 2**14, "r": 8, "p": 1, "dklen": 16}
#: Settings every gate must agree on, compared as they are (all public: in the SP metadata, the
#: IdP's metadata, or the cookies a browser sees).
PUBLIC_SETTINGS: Final = ("base_url", "entity_id", "prefix", "cookie_prefix", "cookie_domain")
#: Settings compared through one hash (the access policy and the session lifetimes).
POLICY_SETTINGS: Final = (
    "authorized_groups",
    "public_paths",
    "access_rules",
    "options_passthrough",
    "maximum_duration",
    "inactivity_timeout",
)


def secret_fingerprint(secret: str, salt: bytes) -> str:
    """A salted, slow fingerprint of one secret."""
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class GateRecord:
    """What one gate publishes about itself."""

    gate: str
    host: str
    pid: int
    salt: str
    secret_signs: str
    secret_accepts: tuple[str, ...]
    sp_certificate: str
    jwt_signs: str
    jwt_publishes: tuple[str, ...]
    idp: str
    policy: str
    public: dict[str, str] = field(default_factory=dict)
    revision: int = 0
    """Raised when the gate's access policy is reloaded: its newest record is the one that
    counts (the earlier ones expire)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GateRecord | None:
        """The record, or None when it is not one (another version's, or damaged)."""
        try:
            data: dict[str, Any] = json.loads(text)
            data["secret_accepts"] = tuple(data["secret_accepts"])
            data["jwt_publishes"] = tuple(data["jwt_publishes"])
            return cls(**data)
        except (ValueError, TypeError, KeyError):
            return None

    @property
    def where(self) -> str:
        return f"the gate on {self.host} (pid {self.pid})"


@dataclass(frozen=True)
class LocalValues:
    """This gate's own values: its record, and its secrets to fingerprint with others' salts."""

    record: GateRecord
    secrets: tuple[str, ...]
    jwt_kids: tuple[str, ...]
    _by_salt: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)

    def fingerprints(self, salt: str) -> tuple[str, ...]:
        """This gate's secrets fingerprinted with ``salt`` (once per salt: scrypt is slow)."""
        found = self._by_salt.get(salt)
        if found is None:
            raw = base64.urlsafe_b64decode(salt.encode())
            found = tuple(secret_fingerprint(secret, raw) for secret in self.secrets)
            self._by_salt[salt] = found
        return found


@dataclass(frozen=True)
class GateFacts:
    """What this gate signs with, known once it has started: its SP certificate (PEM), the
    entity ID of the IdP it trusts, and the ``kid`` of each identity JWT key (the first signs)."""

    sp_certificate: bytes
    idp: str
    jwt_kids: tuple[str, ...]


def local_values(s: GateSettings, facts: GateFacts) -> LocalValues:
    """This gate's record (scrypt runs here: call it off the event loop)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    salt = secrets.token_bytes(16)
    fingerprints = tuple(secret_fingerprint(secret, salt) for secret in s.secret_key)
    certificate = x509.load_pem_x509_certificate(facts.sp_certificate)
    kids = facts.jwt_kids
    record = GateRecord(
        gate=secrets.token_hex(6),
        host=socket.gethostname(),
        pid=os.getpid(),
        salt=base64.urlsafe_b64encode(salt).decode(),
        secret_signs=fingerprints[0],
        secret_accepts=fingerprints,
        sp_certificate=certificate.fingerprint(hashes.SHA256()).hex(),
        jwt_signs=kids[0],
        jwt_publishes=kids,
        idp=facts.idp,
        policy=policy_hash(s),
        public={name: str(getattr(s, name)) for name in PUBLIC_SETTINGS},
    )
    values = LocalValues(record, tuple(s.secret_key), kids)
    values._by_salt[record.salt] = fingerprints
    return values


def policy_hash(s: GateSettings) -> str:
    """One hash of the settings in :data:`POLICY_SETTINGS`, as this gate applies them."""
    policy = json.dumps([repr(getattr(s, name)) for name in POLICY_SETTINGS])
    return hashlib.sha256(policy.encode()).hexdigest()


def disagreements(mine: LocalValues, other: GateRecord) -> list[str]:
    """What ``other`` does not share with this gate, one phrase each (scrypt runs here)."""
    found: list[str] = []
    accepted_here = mine.fingerprints(other.salt)
    mine_signs = accepted_here[0]
    theirs_ok, mine_ok = other.secret_signs in accepted_here, mine_signs in other.secret_accepts
    if not (theirs_ok and mine_ok):
        direction = (
            "neither accepts what the other signs"
            if not (theirs_ok or mine_ok)
            else "it signs with a secret this gate does not accept"
            if not theirs_ok
            else "this gate signs with a secret it does not accept"
        )
        found.append(
            f"secret_key ({direction}: a person signed in, or a sign-in started, on one gate"
            " is refused by the other)"
        )
    if other.sp_certificate != mine.record.sp_certificate:
        found.append(
            f"the SP key pair (sp_key, sp_cert: certificate SHA-256 {other.sp_certificate[:16]}…"
            f" there, {mine.record.sp_certificate[:16]}… here; the IdP holds one SP"
            " certificate, so signed requests or encrypted assertions fail on one of them)"
        )
    if other.jwt_signs not in mine.jwt_kids or mine.record.jwt_signs not in other.jwt_publishes:
        found.append(
            f"jwt_keys (it signs identity JWTs with kid {other.jwt_signs}, this gate with"
            f" {mine.record.jwt_signs}, and each JWKS must publish both: an upstream that fetched"
            " one gate's /saml/jwks.json refuses the other's tokens)"
        )
    if other.idp != mine.record.idp:
        found.append(f"the IdP (idp_metadata: {other.idp} there, {mine.record.idp} here)")
    for name in PUBLIC_SETTINGS:
        theirs, ours = other.public.get(name), mine.record.public.get(name)
        if theirs != ours:
            found.append(f"{name} ({theirs} there, {ours} here)")
    if other.policy != mine.record.policy:
        found.append(f"the access policy or session lifetimes ({', '.join(POLICY_SETTINGS)})")
    return found


@dataclass(frozen=True)
class Comparison:
    """Another gate sharing the store, and what it does not share with this one (``values``;
    empty when it agrees)."""

    other: GateRecord
    values: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"{self.other.where} shares this store but not these values: "
            + "; ".join(self.values)
            + ". Every gate sharing a store must have the same (README: Production checklist);"
            " a gate of another app needs its own store_prefix"
        )


class GateAgreement:
    """Announces this gate's record and compares it with the other gates' (see the module)."""

    def __init__(
        self,
        settings: GateSettings,
        store: Store,
        facts: Callable[[], GateFacts],
        interval: float = INTERVAL,
    ) -> None:
        """``facts``: this gate's, read when it first compares (after its start-up)."""
        self._settings = settings
        self._store = store
        self._facts = facts
        self._interval = interval
        self._mine: LocalValues | None = None
        self._job = BackgroundJob(self._run)
        self._told: set[tuple[str, tuple[str, ...]]] = set()
        self.findings: tuple[str, ...] = ()
        """The current disagreements, for ``/saml/status``."""

    @property
    def shared(self) -> bool:
        """Whether other gates can share this gate's store (the memory store is its own)."""
        return not isinstance(self._store, MemoryStore)

    def start(self) -> None:
        """Announce and compare now, then every ``interval`` seconds; a running loop needed."""
        if self.shared:
            self._job.start()

    async def stop(self) -> None:
        await self._job.stop()

    def policy_reloaded(self, settings: GateSettings) -> None:
        """The access policy was reloaded from the configuration file: from now on this gate
        announces (and compares) the policy in force, so a gate whose file differs is found."""
        self._settings = settings
        mine = self._mine
        if mine is not None:  # the same secrets' fingerprints: only the policy is new
            record = mine.record
            revised = replace(record, policy=policy_hash(settings), revision=record.revision + 1)
            self._mine = replace(mine, record=revised)

    async def _run(self) -> None:
        while True:
            try:
                self._report(await self.compare(announce=True))
            except StoreUnavailable:
                raise_if_cancelled()  # a stop the store's client turned into an outage
                # otherwise the store's guard logs the outage; the next round tries again
            except Exception:  # never take the gate down over a comparison
                raise_if_cancelled()
                log.exception("saml-gate could not compare its keys with the other gates")
            raise_if_cancelled()  # a stop lost inside the store's client
            await asyncio.sleep(self._interval)

    async def compare(self, *, announce: bool) -> list[Comparison]:
        """This gate compared with every other gate in the store (announcing its own record
        first when ``announce``). Raises :class:`StoreUnavailable`."""
        if self._mine is None:
            facts = self._facts()
            self._mine = await anyio.to_thread.run_sync(local_values, self._settings, facts)
        mine = self._mine
        store, now = self._store, self._settings.clock()
        if announce:
            member = mine.record.to_json()
            await store.write([Announce(RECORDS, member, now + LIFETIME, publish=False)])
        others = [GateRecord.from_json(text) for text in await store.expiring(RECORDS, now)]
        newest: dict[str, GateRecord] = {}
        for r in others:  # a gate's earlier records (before a reload) expire: its newest counts
            if r is None or r.gate == mine.record.gate:
                continue
            if r.gate not in newest or r.revision > newest[r.gate].revision:
                newest[r.gate] = r
        records = list(newest.values())
        return await anyio.to_thread.run_sync(_compare_all, mine, records)

    def _report(self, compared: Sequence[Comparison]) -> None:
        found = [item for item in compared if item.values]
        for item in found:
            key = (item.other.gate, item.values)
            if key in self._told:
                continue
            self._told.add(key)
            log.error(
                "saml-gate: %s",
                item.message,
                extra={"event": "gates_disagree", "other_host": item.other.host},
            )
        self.findings = tuple(item.message for item in found)


def _compare_all(mine: LocalValues, records: Sequence[GateRecord]) -> list[Comparison]:
    return [Comparison(record, tuple(disagreements(mine, record))) for record in records]
