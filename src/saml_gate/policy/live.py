"""The access policy in force, replaced whole while the gate runs (a reloaded policy file).

:class:`LivePolicy` holds one immutable :class:`~saml_gate.policy.access.AccessPolicy`; the
request decision reads :attr:`LivePolicy.current` once per request and decides on that object
alone, so a request in flight keeps the policy it started with and the next one gets the new
one: a swap is one attribute assignment, atomic between requests. Each worker process holds its
own and reloads it itself.

The hosts the gate serves (``allowed_hosts``, ``base_url``'s) are the policy's too
(:attr:`AccessPolicy.hosts`): a ``return_to``'s host and a sign-out's ``Origin`` are checked
against :meth:`LivePolicy.known_hosts`, never against a copy made at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saml_gate.policy.access import AccessPolicy

if TYPE_CHECKING:
    from saml_gate.errors import GateError
    from saml_gate.policy.hosts import AppHost, KnownHosts
    from saml_gate.saml.response import VerifiedLogin
    from saml_gate.user import SamlUser


class LivePolicy:
    """The policy in force (:attr:`current`), and the one-call questions on it."""

    __slots__ = ("current",)

    def __init__(self, policy: AccessPolicy) -> None:
        self.current = policy

    def swap(self, policy: AccessPolicy) -> None:
        """Put ``policy`` in force for every request that starts from now on."""
        self.current = policy

    def known_hosts(self) -> KnownHosts:
        """The hosts of the policy in force, for a check that asks the policy nothing else (a
        sign-out's ``Origin``, a pending sign-in's ``return_to``)."""
        return self.current.hosts

    def fresh_sign_in_for(self, path: str, host: AppHost | None = None) -> bool:
        """See :meth:`AccessPolicy.fresh_sign_in_for`."""
        return self.current.fresh_sign_in_for(path, host)

    def host_of(self, return_to: str) -> AppHost | None:
        """See :meth:`AccessPolicy.host_of`."""
        return self.current.host_of(return_to)

    def groups_missing(self, login: VerifiedLogin) -> GateError | None:
        """See :meth:`AccessPolicy.groups_missing`."""
        return self.current.groups_missing(login)

    def unmet_step_up(
        self, path: str, user: SamlUser, now: float, host: AppHost | None = None
    ) -> GateError | None:
        """See :meth:`AccessPolicy.unmet_step_up`."""
        return self.current.unmet_step_up(path, user, now, host)
