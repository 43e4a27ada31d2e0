"""The gate's read-only endpoints: SP metadata, health, readiness, status, the setup sheet, the
current session, the identity JWT's keys (JWKS), and the Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Send

from saml_gate.config.settings import GateSettings
from saml_gate.errors import GateError
from saml_gate.identity.tokens import IdentityTokens
from saml_gate.ops import status as operations
from saml_gate.ops.agreement import GateAgreement
from saml_gate.ops.metrics import GateMetrics
from saml_gate.ops.setup_sheet import SetupSheet
from saml_gate.ops.warnings import StartupWarnings
from saml_gate.runtime.saml_state import LiveSaml
from saml_gate.session.decision import Authenticator
from saml_gate.session.sessions import Session
from saml_gate.store import Store
from saml_gate.web.pages import error_response, setup_page
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import RequestView, require_method
from saml_gate.web.responses import NO_STORE, no_store_json

_JWKS_CACHE: Final = {"Cache-Control": "public, max-age=300"}


@dataclass(frozen=True)
class Info:
    """The endpoints that only report: they change nothing and start no sign-in."""

    settings: GateSettings
    saml: LiveSaml  # read at each use: its SP changes when the IdP metadata is refreshed
    authenticator: Authenticator
    refusals: Refusals
    store: Store
    warnings: StartupWarnings
    agreement: GateAgreement
    tokens: IdentityTokens
    gate_metrics: GateMetrics | None

    async def metadata(self, view: RequestView, receive: Receive) -> Response:
        require_method(view, "GET", "HEAD")
        return Response(
            self.saml.sp.metadata_xml,
            media_type="application/samlmetadata+xml",
            headers={"Content-Disposition": 'inline; filename="saml-gate-metadata.xml"'},
        )

    async def session(self, view: RequestView, receive: Receive) -> Response:
        """Who is signed in, as JSON (401 when nobody is)."""
        require_method(view, "GET", "HEAD")
        session = await self._live_session(view)
        if session is None:
            return error_response(
                GateError("not_authenticated"),
                wants_json=True,
                show_detail=False,
                extra={"login_url": self.settings.login_url},
            )
        body = session.user.as_dict()
        body["idle_timeout_seconds"] = self.settings.inactivity_timeout
        return no_store_json(body)

    async def health(self, view: RequestView, receive: Receive) -> Response:
        """Liveness: the process answers. No dependency is consulted."""
        require_method(view, "GET", "HEAD")
        return no_store_json({"status": "ok"})

    async def ready(self, view: RequestView, receive: Receive) -> Response:
        """Readiness: IdP metadata loaded and, when a shared store is configured, reachable."""
        require_method(view, "GET", "HEAD")
        checks = await operations.readiness(self.saml.idp, self.store)
        ok = all(c["ok"] for c in checks.values())
        return no_store_json(
            {"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503
        )

    async def status(self, view: RequestView, receive: Receive) -> Response:
        """What an operator wants to know; loopback clients or members of ``status_group``."""
        require_method(view, "GET", "HEAD")
        s = self.settings
        group = s.status_group
        if not view.is_local:
            session = await self._live_session(view) if group else None
            if session is None or group not in session.user.groups:
                raise GateError("forbidden", "status is for loopback clients or the status_group")
        state = self.saml.state
        warnings = [message for _, message in self.warnings.collect()]
        warnings += self.agreement.findings
        metadata = self.saml.metadata_status(s.clock())
        report = operations.status(
            s, state.idp, state.keys.cert_pem, metadata, self.store, warnings
        )
        return no_store_json(report)

    async def setup(self, view: RequestView, receive: Receive) -> Response:
        """The IdP setup sheet: public values only (they are all in the SP metadata)."""
        require_method(view, "GET", "HEAD")
        state = self.saml.state
        sheet = SetupSheet.build(self.settings, state.keys.cert_pem, state.sp.sign_requests)
        if not view.wants_json:
            return setup_page(sheet)
        rows = [
            {"field": r.field, "value": r.value, "note": r.note, "okta": r.okta} for r in sheet.rows
        ]
        body = {"rows": rows, "certificate": sheet.certificate_pem, "warnings": sheet.warnings}
        return JSONResponse(body)

    async def jwks(self, view: RequestView, receive: Receive) -> Response:
        """``/jwks.json``: the public keys of the identity JWT (cacheable, for upstreams)."""
        require_method(view, "GET", "HEAD")
        return JSONResponse(self.tokens.jwks, headers=_JWKS_CACHE)

    async def metrics(self, view: RequestView, receive: Receive, send: Send) -> None:
        """Prometheus exposition at ``metrics_path``; loopback-only unless metrics_public."""
        metrics = self.gate_metrics
        scope = view.scope
        if metrics is None or scope["type"] != "http" or view.method not in ("GET", "HEAD"):
            response = self.refusals.error(view, GateError("not_found", "metrics"))
        elif not (self.settings.metrics_public or view.is_local):
            response = self.refusals.error(
                view, GateError("forbidden", "metrics are loopback-only")
            )
        else:
            body, media_type = metrics.exposition()
            response = Response(body, media_type=media_type, headers=NO_STORE)
        await response(scope, receive, send)

    async def _live_session(self, view: RequestView) -> Session | None:
        now = self.settings.clock()
        return await self.authenticator.live_session(view.cookie_header, now)
