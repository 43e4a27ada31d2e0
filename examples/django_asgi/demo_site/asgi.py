"""ASGI entry point: the Django project with SamlGate in front of it.

    uvicorn examples.django_asgi.demo_site.asgi:application
    saml-gate run examples.django_asgi.demo_site.asgi:application --base-url ... (flags)

Under ``saml-gate run`` (or any SamlGate) ``application`` serves Django without a gate of its
own: the outer gate is the one, configured by the command's flags.

``application`` builds the gate lazily -- at the ASGI ``lifespan`` startup, or on the first
request if the server sends no lifespan events -- so importing this module needs no
configuration, and a configuration error stops the server at startup with the setting named.
``build_application(**overrides)`` builds a gate directly (tests pass a frozen clock this way).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Unpack, cast

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_asgi.demo_site.settings")

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application
from starlette.types import ASGIApp, Receive, Scope, Send

from saml_gate import GateOptions, SamlGate
from saml_gate.middleware import behind_gate


def django_application() -> ASGIApp:
    """Django alone (and the admin's static files): for a gate put in front by someone else."""
    # The admin's CSS and scripts (STATIC_URL), served by Django itself: fine for an example;
    # behind the gate like every other path.
    handler: ASGIApp = ASGIStaticFilesHandler(get_asgi_application())  # runs django.setup()
    return handler


def build_application(**overrides: Unpack[GateOptions]) -> SamlGate:
    """Django behind the gate. Options: ``settings.SAML_GATE``, then ``overrides``, then env."""
    django_app = django_application()  # runs django.setup(): settings are usable after this
    configured = cast(GateOptions, getattr(settings, "SAML_GATE", {}))  # a dict in settings.py
    options: GateOptions = {**configured, **overrides}
    return SamlGate(django_app, **options)


class LazyApplication:
    """An ASGI app that builds the real one on first use and answers ``lifespan`` itself.

    Django's ASGI handler raises on anything but ``http`` scopes, ``lifespan`` included (and the
    gate passes lifespan through to the app). uvicorn's default ``--lifespan auto`` would log that
    as "lifespan unsupported" and carry on; answering lifespan here instead builds the gate at
    startup, so a missing or bad setting fails the start (``lifespan.startup.failed``) instead
    of every request.

    When a SamlGate starts it (``saml-gate run ...asgi:application``: the gate's lifespan), it
    builds ``unwrapped`` instead: Django without a second gate.
    """

    def __init__(
        self, factory: Callable[[], ASGIApp], unwrapped: Callable[[], ASGIApp] | None = None
    ) -> None:
        self._factory = factory
        self._unwrapped = unwrapped
        self._app: ASGIApp | None = None

    def get(self) -> ASGIApp:
        """The real application, built on the first call."""
        # No await between the check and the assignment: one build per event loop.
        if self._app is None:
            outer_gate = self._unwrapped is not None and behind_gate()
            build = self._unwrapped if outer_gate and self._unwrapped else self._factory
            self._app = build()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.get()(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.get()  # build now, so that a bad setting fails the start
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


application = LazyApplication(build_application, unwrapped=django_application)
