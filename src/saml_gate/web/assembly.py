"""One function builds a gate's parts: :func:`assemble`.

It only checks and wires — no file, network or store is touched, no thread or task started, no
process-wide state changed: that is :meth:`GateCore.start`'s start-up work. Each handler is
handed the collaborators it uses, never the whole core; what changes while the gate runs (the
IdP's metadata, hence its SP and verifier) is read through :class:`LiveSaml` at each use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from saml_gate.config.settings import GateSettings
from saml_gate.errors import ConfigError
from saml_gate.identity.access_tokens import AccessTokens
from saml_gate.identity.tokens import IdentityTokens
from saml_gate.ip_addresses import ClientAddresses
from saml_gate.ops.agreement import GateAgreement, GateFacts
from saml_gate.ops.events import EventSink
from saml_gate.ops.metrics import GateMetrics
from saml_gate.ops.warnings import StartupWarnings
from saml_gate.policy import AccessPolicy
from saml_gate.policy.live import LivePolicy
from saml_gate.runtime.core import GateCore
from saml_gate.runtime.engine import engine_for
from saml_gate.runtime.policy_reload import PolicyReload
from saml_gate.runtime.remote_keys import RemoteKeySet
from saml_gate.runtime.saml_state import LiveSaml
from saml_gate.session.decision import Authenticator
from saml_gate.session.gate_tokens import GateTokens
from saml_gate.session.relay import RelayTracker
from saml_gate.session.revocation import Revocations
from saml_gate.session.sessions import SessionCodec
from saml_gate.session.watch import SessionWatch
from saml_gate.store import open_store
from saml_gate.store.guard import GuardedStore
from saml_gate.web.acs import AssertionConsumer
from saml_gate.web.forward_auth import ForwardAuth
from saml_gate.web.gatekeeper import Gatekeeper
from saml_gate.web.info import Info
from saml_gate.web.kept_admits import KeptAdmits
from saml_gate.web.login import Login
from saml_gate.web.logout import Logout
from saml_gate.web.machine_access import MachineAccess
from saml_gate.web.refusals import Refusals
from saml_gate.web.router import Endpoints, Handler
from saml_gate.web.universal_logout import UniversalLogout


@dataclass(frozen=True)
class GateParts:
    """What :class:`~saml_gate.middleware.SamlGate` runs on."""

    core: GateCore
    addresses: ClientAddresses
    gatekeeper: Gatekeeper
    """The request decision, for the app's requests (and ``/auth``'s)."""
    login: Login
    """Carries a sign-in verdict out for the app."""
    refusals: Refusals
    info: Info
    """The metrics endpoint, served at ``metrics_path`` outside the prefix."""
    endpoints: Endpoints
    """Everything under the prefix."""
    forward_auth: ForwardAuth | None
    """``/auth``; None where forward-auth is not configured."""
    watch: SessionWatch
    """Ends an admitted WebSocket with its session."""


def assemble(
    settings: GateSettings, store: Any = None, given: Mapping[str, Any] | None = None
) -> GateParts:
    """Every part of a gate for ``settings``. ``store``: a Store or a ``redis.asyncio.Redis``
    client; None opens the ``store`` setting. ``given``: the keywords the settings were
    loaded from, for reloading the access policy from ``config_file`` (None: no reload).
    Raises :class:`ConfigError` for what cannot be built (a Redis URL without redis-py,
    metrics without prometheus-client...)."""
    s = settings
    shared = open_store(s, store)
    saml = LiveSaml(s)
    metrics = None
    if s.metrics_path is not None or s.metrics_registry is not None:
        metrics = GateMetrics(s.metrics_registry)
        metrics.bind(
            lambda: saml.metadata_age(s.clock()),
            lambda: saml.idp.signing_certs if saml.loaded else (),
            lambda: saml.keys.cert_pem if saml.loaded else None,
            s.clock,
        )
        if isinstance(shared, GuardedStore):
            shared.on_failure = metrics.store_errors.inc
    events = EventSink(s.on_event, metrics)

    def trusted_issuer() -> str:
        """The entity ID of the IdP trusted now (a metadata refresh may change it)."""
        return saml.state.idp.entity_id

    sessions = SessionCodec(s, shared, issuer=trusted_issuer)
    revocations = Revocations(shared, s, private=store is None and s.store == "memory")
    policy = LivePolicy(AccessPolicy(s))
    relay = RelayTracker(s, policy.known_hosts)  # return_to's hosts: the policy in force
    engine = engine_for(saml)
    tokens = IdentityTokens(s)

    def certificates() -> list[tuple[str, bytes]]:
        state = saml.state
        return [("IdP signing", pem) for pem in state.idp.signing_certs] + [
            ("SP", state.keys.cert_pem)
        ]

    warnings = StartupWarnings(s, certificates, shared)

    def facts() -> GateFacts:
        kids = tuple(key.kid for key in tokens.keys)
        return GateFacts(saml.keys.cert_pem, saml.idp.entity_id, kids)

    agreement = GateAgreement(s, shared, facts)
    reload = None
    if given is not None and s.config_file is not None:
        reload = PolicyReload(s, given, policy, metrics, on_reload=agreement.policy_reloaded)
    logout_keys = _key_set(s, s.universal_logout_keys_source, "universal_logout_keys")
    access_keys = _key_set(s, s.access_token_keys_source, "access_token_keys")
    core = GateCore(
        settings=s,
        store=shared,
        saml=saml,
        sessions=sessions,
        revocations=revocations,
        relay=relay,
        engine=engine,
        events=events,
        metrics=metrics,
        warnings=warnings,
        agreement=agreement,
        tokens=tokens,
        universal_logout_keys=logout_keys,
        access_token_keys=access_keys,
        policy_reload=reload,
    )

    addresses = ClientAddresses(s.trusted_proxies)
    authenticator = Authenticator(sessions, revocations)
    refusals = Refusals(s, events, sessions, issuer=trusted_issuer)
    gatekeeper = Gatekeeper(
        policy,
        authenticator,
        sessions,
        tokens if s.jwt_header else None,
        events,
        s.clock,
        s.reassert_interval,
        MachineAccess(
            GateTokens(shared, revocations, s.clock, s.clock_skew),
            _access_tokens(s, access_keys),
        ),
        KeptAdmits(revocations, saml),
    )
    login = Login(s, policy, refusals, relay, engine, authenticator)
    info = Info(s, saml, authenticator, refusals, shared, warnings, agreement, tokens, metrics)
    acs = AssertionConsumer(
        s, engine, relay, sessions, revocations, shared, events, metrics, policy, refusals
    )
    logout = Logout(
        s,
        saml=saml,
        engine=engine,
        authenticator=authenticator,
        sessions=sessions,
        revocations=revocations,
        store=shared,
        events=events,
        refusals=refusals,
        policy=policy,
    )
    routes: dict[str, Handler] = {
        "/metadata": info.metadata,
        "/login": login.login,
        "/acs": acs.acs,
        "/logout": logout.logout,
        "/session": info.session,
        "/setup": info.setup,
        "/health": info.health,
        "/ready": info.ready,
        "/status": info.status,
        "/slo": logout.slo,
        "/jwks.json": info.jwks,
    }
    if logout_keys is not None:
        universal_logout = UniversalLogout(s, logout_keys, revocations, shared, events)
        routes["/global-token-revocation"] = universal_logout.revoke
    forward_auth = None
    if s.forward_auth:  # never by default: see the forward_auth setting
        forward_auth = ForwardAuth(s, gatekeeper, addresses, refusals)
        routes["/auth"] = forward_auth.auth
    endpoints = Endpoints(s, routes, refusals, addresses, devidp=lambda: saml.devidp)
    return GateParts(
        core=core,
        addresses=addresses,
        gatekeeper=gatekeeper,
        login=login,
        refusals=refusals,
        info=info,
        endpoints=endpoints,
        forward_auth=forward_auth,
        watch=SessionWatch(revocations, s.clock, s.reassert_interval),
    )


def _key_set(s: GateSettings, source: str | None, setting: str) -> RemoteKeySet | None:
    """A signer's published keys, fetched as IdP metadata is (None: the feature is off)."""
    return None if source is None else RemoteKeySet.fetched_as_metadata(s, source, setting)


def _access_tokens(s: GateSettings, keys: RemoteKeySet | None) -> AccessTokens | None:
    """The IdP access tokens' check (None while ``access_token_issuer`` is unset)."""
    if keys is None or s.access_token_issuer is None:
        return None
    try:
        return AccessTokens(
            keys,
            issuer=s.access_token_issuer,
            audiences=s.access_token_audiences,
            algorithms=s.access_token_algorithms,
            groups_claim=s.access_token_groups_claim,
            scope_groups=s.scope_group_map,
            leeway=s.clock_skew,
            clock=s.clock,
        )
    except ValueError as exc:
        raise ConfigError("access_token_algorithms", str(exc)) from exc
