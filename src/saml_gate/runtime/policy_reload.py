"""Reloading the access policy from the configuration file while the gate runs.

Every ~second (and on SIGHUP under the command line) the file's modification time, size and
hash are compared with the last ones; on a change that stays put for :data:`SETTLE_SECONDS`
(a file written in place is not read half-written) the gate's settings are loaded again exactly
as at start (the same keywords and flags win, then the environment, then the file), validated
whole, and:

* a file that does not validate changes nothing: one log line names the file, the line and the
  setting, and ``saml_gate_policy_reload_failures_total`` counts it;
* the access policy (:data:`RELOADABLE`: the rules, public paths, authorized groups and the
  hosts the gate serves) is built anew and swapped in whole
  (:class:`~saml_gate.policy.live.LivePolicy`), ``saml_gate_policy_reloads_total`` counts it;
  every check of a host against ``allowed_hosts`` (a request's, a ``return_to``'s, a sign-out's
  ``Origin``) asks the policy in force, so the new hosts apply to all of them at once;
* a change to any other setting (secret, store, keys, base URL, cookie domain...) is never
  applied: the running parts were built from it at start, so one line says it needs a restart;
* a reloadable setting that changed together with one it goes with (:data:`COUPLED`:
  ``allowed_hosts`` with ``cookie_domain``) waits for that restart too, and the line says so,
  rather than being applied half.

Each worker process reloads its own policy from the same file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import anyio
import anyio.to_thread

from saml_gate.background import BackgroundJob
from saml_gate.config.config_file import SETTING, policy_places
from saml_gate.config.loading import config_file_of
from saml_gate.config.settings import GateSettings
from saml_gate.config.validation import ConfigErrors
from saml_gate.errors import ConfigError
from saml_gate.ops.metrics import GateMetrics
from saml_gate.policy import AccessPolicy
from saml_gate.policy.live import LivePolicy

log = logging.getLogger("saml_gate")

#: The settings a reload applies: what :class:`AccessPolicy` is built from, which nothing else
#: keeps a copy of (the hosts are asked of the policy in force). Every other setting needs a
#: restart.
RELOADABLE: Final = frozenset(
    ("access_rules", "public_paths", "authorized_groups", "allowed_hosts")
)
#: Reloadable settings that are not applied while a restart-only setting they go with changed
#: too: one sign-in covers the hosts of ``allowed_hosts`` through ``cookie_domain``, so a host
#: added for a new cookie domain would, under the running one, get no session cookie and send
#: its visitors round the IdP again and again.
COUPLED: Final = {"allowed_hosts": frozenset(("cookie_domain",))}
#: How often the file is looked at.
POLL_SECONDS: Final = 1.0
#: How long a changed file must stay unchanged before it is read.
SETTLE_SECONDS: Final = 0.1

Signature = tuple[int, int, bytes] | None


@dataclass(frozen=True)
class ReloadResult:
    """What one reload did: ``applied`` (the policy changed), ``restart`` (settings that
    changed but need a restart), ``error`` (the file was refused: nothing changed)."""

    applied: bool = False
    restart: tuple[str, ...] = ()
    error: str | None = None


def signature(path: str) -> Signature:
    """The file's modification time, size and hash (None when it cannot be read)."""
    try:
        file = Path(path).expanduser()
        stat = file.stat()
        digest = hashlib.sha256(file.read_bytes()).digest()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, digest)


class PolicyReload:
    """Watches ``settings.config_file`` and reloads the access policy (module docstring).
    ``given``: the keywords (or flags) the settings were loaded from, which still win."""

    def __init__(
        self,
        settings: GateSettings,
        given: Mapping[str, Any],
        live: LivePolicy,
        metrics: GateMetrics | None,
        environ: Mapping[str, str] | None = None,
        on_reload: Callable[[GateSettings], None] | None = None,
    ) -> None:
        assert settings.config_file is not None
        self.path: str = settings.config_file
        self._settings = settings
        self._given = dict(given)
        self._live = live
        self._metrics = metrics
        self._environ = environ
        self._on_reload = on_reload
        """Told the settings now in force after each reload that changed the policy."""
        self._seen: Signature = None
        self._job = BackgroundJob(self._watch)
        self._wake: anyio.Event | None = None
        self.on_sighup = False
        """Reload at once on SIGHUP too (the command line sets it)."""

    async def start(self) -> None:
        """Put the file's policy in force with each rule's place, then watch the file."""
        self._seen = await anyio.to_thread.run_sync(signature, self.path)
        self.reload(first=True)
        self._wake = anyio.Event()
        if self.on_sighup:
            import asyncio

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._hangup)
        self._job.start()

    def _hangup(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        if self.on_sighup:
            import asyncio

            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await self._job.stop()

    async def _watch(self) -> None:
        while True:
            wake = self._wake = anyio.Event()
            with anyio.move_on_after(POLL_SECONDS):
                await wake.wait()
            hup = wake.is_set()
            seen = await anyio.to_thread.run_sync(signature, self.path)
            if seen == self._seen and not hup:
                continue
            # A file being written in place may be read half-written, and half a policy can be
            # valid TOML with fewer rules (a weaker policy): apply only a file that stays put.
            await anyio.sleep(SETTLE_SECONDS)
            if await anyio.to_thread.run_sync(signature, self.path) != seen:
                continue  # still changing: the next look takes it
            self._seen = seen
            try:
                self.reload()
            except Exception as exc:  # never let the watch die: the running policy stays
                self._refused(ConfigError(SETTING, f"{type(exc).__name__}: {exc}"))

    def reload(self, *, first: bool = False) -> ReloadResult:
        """Load the settings again and apply what may be applied (see the module docstring)."""
        try:
            new = GateSettings.load(environ=self._environ, **self._given)
        except ConfigError as exc:
            return self._refused(exc)
        old = self._settings
        changed = [  # hooks, clients and the clock are Python objects: never from a file
            f.name
            for f in dataclasses.fields(GateSettings)
            if f.compare and getattr(new, f.name) != getattr(old, f.name)
        ]
        needs_restart = [name for name in changed if name not in RELOADABLE]
        held = {  # reloadable, but changed with a restart-only setting it goes with
            name: goes_with
            for name in changed
            if (goes_with := sorted(COUPLED.get(name, frozenset()).intersection(needs_restart)))
        }
        restart = (*needs_restart, *held)
        update = {
            name: getattr(new, name) for name in changed if name in RELOADABLE and name not in held
        }
        merged = dataclasses.replace(old, **update) if update else old
        try:
            policy = placed_policy(merged)
        except ConfigError as exc:  # pragma: no cover - the settings' checks come first
            return self._refused(exc)
        self._live.swap(policy)
        self._settings = merged
        if update and self._on_reload is not None:
            self._on_reload(merged)
        if first and not update and not restart:
            return ReloadResult()
        if not update and not restart:
            log.info(
                "%s: read again, nothing changed", self.path, extra={"event": "policy_reloaded"}
            )
        if self._metrics is not None:
            self._metrics.policy_reloads.inc()
        if update:
            log.info(
                "%s: access policy reloaded (%s changed; %d rules in force)",
                self.path,
                ", ".join(sorted(update)),
                len(policy.rules),
                extra={"event": "policy_reloaded"},
            )
        if restart:
            log.warning(
                "%s: %s changed and needs a restart; not applied (the running value stays)%s",
                self.path,
                ", ".join(restart),
                "".join(
                    f"; {name} waits for that restart too, as it changed with"
                    f" {', '.join(goes_with)}: one is not applied without the other"
                    for name, goes_with in held.items()
                ),
                extra={"event": "policy_reload_needs_restart"},
            )
        return ReloadResult(applied=bool(update), restart=restart)

    def _refused(self, exc: ConfigError) -> ReloadResult:
        problems = exc.problems if isinstance(exc, ConfigErrors) else (exc,)
        text = "; ".join(str(problem) for problem in problems)
        if self._metrics is not None:
            self._metrics.policy_reload_failures.inc()
        log.error(
            "%s: not reloaded, the running access policy stays: %s",
            self.path,
            text,
            extra={"event": "policy_reload_failed"},
        )
        return ReloadResult(error=text)


def placed_policy(settings: GateSettings) -> AccessPolicy:
    """The access policy of ``settings``, each rule's place in the configuration file known
    (where the file gave it): what the gate, ``policy explain`` and ``check`` decide on."""
    file = config_file_of(settings.config_file, {})
    places = policy_places(settings.public_paths, settings.access_rules, file)
    return AccessPolicy(settings, places)
