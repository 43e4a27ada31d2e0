"""The access policy in force, replaced whole while the gate runs (a reloaded policy file).

:class:`LivePolicy` holds one immutable :class:`~saml_gate.policy.access.AccessPolicy`; the
request decision reads :attr:`LivePolicy.current` once per request and decides on that object
alone, so a request in flight keeps the policy it started with and the next one gets the new
one: a swap is one attribute assignment, atomic between requests. Each worker process holds its
own and reloads it itself.

The hosts the gate serves (``allowed_hosts``, ``base_url``'s) are the policy's too
(:attr:`AccessPolicy.hosts`): a request's host, a ``return_to``'s at ``/login`` and the ACS
(each reads :attr:`LivePolicy.current` once, for its hosts and its rules alike) and a sign-out's
``Origin`` (:meth:`LivePolicy.known_hosts`) are checked against the policy in force, never
against a copy made at start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from saml_gate.policy.access import AccessPolicy

if TYPE_CHECKING:
    from saml_gate.policy.hosts import KnownHosts


class LivePolicy:
    """The policy in force (:attr:`current`). A handler reads it once and asks that object
    everything it needs (hosts and rules alike), so that one request never mixes two."""

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
