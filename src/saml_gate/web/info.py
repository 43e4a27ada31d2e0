"""The gate's read-only endpoints: SP metadata, health, readiness, status, the setup sheet, the
current session, and the Prometheus metrics."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Send

from saml_gate.errors import GateError
from saml_gate.ops import status as operations
from saml_gate.ops.setup_sheet import SetupSheet
from saml_gate.runtime.core import GateCore
from saml_gate.session.decision import Authenticator
from saml_gate.session.sessions import Session
from saml_gate.web.pages import error_response, setup_page
from saml_gate.web.refusals import Refusals
from saml_gate.web.request import RequestView, require_method
from saml_gate.web.responses import NO_STORE, no_store_json


@dataclass(frozen=True)
class Info:
    """The endpoints that only report: they change nothing and start no sign-in."""

    core: GateCore  # read at each use: its SP changes when the IdP metadata is refreshed
    authenticator: Authenticator
    refusals: Refusals

    async def metadata(self, view: RequestView, receive: Receive) -> Response:
        require_method(view, "GET", "HEAD")
        return Response(
            self.core.sp.metadata_xml,
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
                extra={"login_url": self.core.settings.login_url},
            )
        body = session.user.as_dict()
        body["idle_timeout_seconds"] = self.core.settings.inactivity_timeout
        return no_store_json(body)

    async def health(self, view: RequestView, receive: Receive) -> Response:
        """Liveness: the process answers. No dependency is consulted."""
        require_method(view, "GET", "HEAD")
        return no_store_json({"status": "ok"})

    async def ready(self, view: RequestView, receive: Receive) -> Response:
        """Readiness: IdP metadata loaded and, when a shared store is configured, reachable."""
        require_method(view, "GET", "HEAD")
        checks = await operations.readiness(self.core)
        ok = all(c["ok"] for c in checks.values())
        return no_store_json(
            {"status": "ready" if ok else "not ready", "checks": checks}, 200 if ok else 503
        )

    async def status(self, view: RequestView, receive: Receive) -> Response:
        """What an operator wants to know; loopback clients or members of ``status_group``."""
        require_method(view, "GET", "HEAD")
        group = self.core.settings.status_group
        if not view.is_local:
            session = await self._live_session(view) if group else None
            if session is None or group not in session.user.groups:
                raise GateError("forbidden", "status is for loopback clients or the status_group")
        return no_store_json(operations.status(self.core))

    async def setup(self, view: RequestView, receive: Receive) -> Response:
        """The IdP setup sheet: public values only (they are all in the SP metadata)."""
        require_method(view, "GET", "HEAD")
        sheet = SetupSheet.build(
            self.core.settings, self.core.sp_keys.cert_pem, self.core.sp.sign_requests
        )
        if not view.wants_json:
            return setup_page(sheet)
        rows = [
            {"field": r.field, "value": r.value, "note": r.note, "okta": r.okta} for r in sheet.rows
        ]
        body = {"rows": rows, "certificate": sheet.certificate_pem, "warnings": sheet.warnings}
        return JSONResponse(body)

    async def metrics(self, view: RequestView, receive: Receive, send: Send) -> None:
        """Prometheus exposition at ``metrics_path``; loopback-only unless metrics_public."""
        metrics = self.core.metrics
        scope = view.scope
        if metrics is None or scope["type"] != "http" or view.method not in ("GET", "HEAD"):
            response = self.refusals.error(view, GateError("not_found", "metrics"))
        elif not (self.core.settings.metrics_public or view.is_local):
            response = self.refusals.error(
                view, GateError("forbidden", "metrics are loopback-only")
            )
        else:
            body, media_type = metrics.exposition()
            response = Response(body, media_type=media_type, headers=NO_STORE)
        await response(scope, receive, send)

    async def _live_session(self, view: RequestView) -> Session | None:
        now = self.core.settings.clock()
        return await self.authenticator.live_session(view.cookie_header, now)
